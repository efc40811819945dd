<%-- A JSP, compiled by Tomcat at run time (ecj is in the bundle) --%>
<%@ page contentType="text/plain" %>JSP says <%= 6 * 7 %>
