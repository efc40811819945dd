/**
 * How the droplet starts Tomcat, with bash alone (no ruby or any other tool at run time):
 * `startup` runs the `prestart` lines in the droplet directory once $PORT is known — they
 * write `tomcat/conf/server.xml` for that port with printf (a bash builtin) and export
 * CATALINA_* — then the start command execs the JVM, which becomes the app's process.
 */
import type { TomcatMemory } from './memory.ts';

/**
 * server.xml: one HTTP connector on $PORT, no shutdown port (`./stop` signals the process,
 * and two instances on one host must not fight over port 8005), no AJP, ROOT deployed from
 * its directory at start (no auto-deploy thread, no WAR unpacking at run time).
 */
const SERVER_XML = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<!-- Written by the droplet startup for port %s -->',
  '<Server port="-1" shutdown="SHUTDOWN">',
  '  <Listener className="org.apache.catalina.startup.VersionLoggerListener" />',
  '  <Listener className="org.apache.catalina.core.JreMemoryLeakPreventionListener" />',
  '  <Service name="Catalina">',
  '    <Connector port="%s" protocol="HTTP/1.1" connectionTimeout="20000" maxThreads="100" />',
  '    <Engine name="Catalina" defaultHost="localhost">',
  '      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false" deployOnStartup="true" />',
  '    </Engine>',
  '  </Service>',
  '</Server>',
];

/** JDK 17 needs these opened for Tomcat's leak detection (what catalina.sh adds). */
const ADD_OPENS = [
  '--add-opens=java.base/java.lang=ALL-UNNAMED',
  '--add-opens=java.base/java.io=ALL-UNNAMED',
  '--add-opens=java.base/java.util=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent=ALL-UNNAMED',
  '--add-opens=java.rmi/sun.rmi.transport=ALL-UNNAMED',
];

export function prestartLines(memory: TomcatMemory): string[] {
  const xml = SERVER_XML.join('\\n');
  return [
    '# Tomcat: server.xml for this port, then the JVM options (java_web)',
    'case "$PORT" in \'\'|*[!0-9]*) echo "startup: PORT must be a number, not \\"$PORT\\"" >&2; exit 2 ;; esac',
    `printf '${xml}\\n' "$PORT" "$PORT" > tomcat/conf/server.xml`,
    'export CATALINA_HOME="$DROPLET_DIR/tomcat" CATALINA_BASE="$DROPLET_DIR/tomcat" CATALINA_TMPDIR="$DROPLET_DIR/tmp"',
    // The user's own CATALINA_OPTS come last, so an -Xmx of theirs wins.
    `export CATALINA_OPTS="${memory.options.join(' ')} -Djava.io.tmpdir=$PWD/tmp\${CATALINA_OPTS:+ $CATALINA_OPTS}"`,
  ];
}

/** Run from the droplet's app/ (empty for java_web): exec, so the JVM is the process `stop` signals. */
export const START_COMMAND = [
  'exec java',
  ...ADD_OPENS,
  '$CATALINA_OPTS',
  '-Djava.util.logging.config.file="$CATALINA_BASE/conf/logging.properties"',
  '-Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager',
  '-Djava.security.egd=file:/dev/./urandom',
  '-Dcatalina.home="$CATALINA_HOME" -Dcatalina.base="$CATALINA_BASE"',
  '-classpath "$CATALINA_HOME/bin/bootstrap.jar:$CATALINA_HOME/bin/tomcat-juli.jar"',
  'org.apache.catalina.startup.Bootstrap start',
].join(' ');
