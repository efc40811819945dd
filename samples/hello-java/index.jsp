<%-- A minimal web application: Tomcat compiles this page on its first request. --%>
<%@ page contentType="text/plain" %>Hello from dropwarden! (java <%= System.getProperty("java.version") %>)
