<html><body>A web app without its deployment descriptor.</body></html>
