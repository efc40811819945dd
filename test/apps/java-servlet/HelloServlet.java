// The fixture servlet, compiled at test time against the Tomcat bundle's servlet API
// (test/plugins/java-web.test.ts); the javax variant is this file with javax for jakarta.
package hello;

import java.io.IOException;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

public class HelloServlet extends HttpServlet {
  @Override
  protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
    resp.setContentType("text/plain");
    resp.getWriter().print("Hello from java_web on " + getServletContext().getServerInfo() + "\n"
        + "servlet API " + HttpServlet.class.getPackage().getName() + "\n"
        + "tmpdir " + System.getProperty("java.io.tmpdir") + "\n"
        + "max heap MB " + (Runtime.getRuntime().maxMemory() >> 20) + "\n");
  }
}
