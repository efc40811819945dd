print("a script with no WSGI application and no Procfile")
