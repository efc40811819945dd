#!/usr/bin/env bash
# Builds the Tomcat bundles that the java_web plugin copies into droplets, from Debian's
# packages (nothing downloaded):
#   tomcat10/  Jakarta EE 10 (jakarta.servlet 6), from tomcat10 / libtomcat10-java
#   tomcat9/   Java EE 8 (javax.servlet 4), assembled from libtomcat9-java's jars; Debian has
#              no tomcat9 package, so bootstrap.jar is cut from its catalina and util jars and
#              the configuration is tomcat10's with a javax-era default web.xml
# Each bundle is a CATALINA_HOME without server.xml (the droplet's startup writes that for its
# port) and with console-only logging (the droplet's logs/ keep stdout and stderr).
# JSP support: ecj (libecj-java) goes into lib/ when it is installed.
#
# Usage: resources/tomcat/build-bundle.sh [OUT_DIR]   (default: $DROPWARDEN_RUNTIMES_DIR, else
# resources/build next to this folder). Idempotent; each bundle is replaced atomically.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-${DROPWARDEN_RUNTIMES_DIR:-$here/../build}}"
java_dir=/usr/share/java
t10_home=/usr/share/tomcat10
t10_conf=/usr/share/tomcat10/etc

need() {
  [ -e "$1" ] || { echo "build-bundle: $1 is missing: apt-get install -y $2" >&2; exit 1; }
}
need "$t10_home/bin/bootstrap.jar" tomcat10
need "$t10_conf/web.xml" tomcat10
need "$java_dir/tomcat9-catalina.jar" libtomcat9-java
command -v unzip >/dev/null || { echo "build-bundle: unzip is missing" >&2; exit 1; }
command -v zip >/dev/null || { echo "build-bundle: zip is missing" >&2; exit 1; }

mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Jars a web container does not need at run time: Ant tasks, clustering, translations.
skip_jar() {
  case "$1" in
    *catalina-ant*|*catalina-ha*|*tribes*|*i18n*|*storeconfig*) return 0 ;;
    *) return 1 ;;
  esac
}

# conf/ shared by both: the packaged defaults, minus server.xml, with logging to the console.
write_conf() {
  local dest="$1"
  mkdir -p "$dest"
  for f in catalina.properties context.xml jaspic-providers.xml; do cp "$t10_conf/$f" "$dest/$f"; done
  cat > "$dest/logging.properties" <<'PROPS'
# dropwarden: everything to the console; the droplet's startup sends it to logs/stdout.log
handlers = java.util.logging.ConsoleHandler
.handlers = java.util.logging.ConsoleHandler
java.util.logging.ConsoleHandler.level = FINE
java.util.logging.ConsoleHandler.formatter = org.apache.juli.OneLineFormatter
java.util.logging.ConsoleHandler.encoding = UTF-8
PROPS
}

finish() {
  local name="$1" version="$2"
  mkdir -p "$work/$name/webapps" "$work/$name/logs" "$work/$name/work" "$work/$name/temp"
  echo "$version" > "$work/$name/VERSION"
  find "$work/$name" -exec chmod u+rwX,go+rX,go-w {} +
  rm -rf "$out/$name.old"
  [ -e "$out/$name" ] && mv "$out/$name" "$out/$name.old"
  mv "$work/$name" "$out/$name"
  rm -rf "$out/$name.old"
  echo "build-bundle: $out/$name (Tomcat $version)"
}

# --- Tomcat 10.1 -------------------------------------------------------------------------
t10="$work/tomcat10"
mkdir -p "$t10/bin" "$t10/lib"
cp -L "$t10_home/bin/bootstrap.jar" "$t10_home/bin/tomcat-juli.jar" "$t10/bin/"
for jar in "$t10_home"/lib/*.jar; do
  skip_jar "$jar" || cp -L "$jar" "$t10/lib/"
done
[ -e "$java_dir/ecj.jar" ] && cp -L "$java_dir/ecj.jar" "$t10/lib/ecj.jar"
write_conf "$t10/conf"
cp "$t10_conf/web.xml" "$t10/conf/web.xml"
v10="$(unzip -p "$t10/lib/catalina.jar" org/apache/catalina/util/ServerInfo.properties | sed -n 's/^server.number=//p')"
finish tomcat10 "${v10:-10.1}"

# --- Tomcat 9.0, assembled from libtomcat9-java --------------------------------------------
t9="$work/tomcat9"
mkdir -p "$t9/bin" "$t9/lib"
cp -L "$java_dir/tomcat9-juli.jar" "$t9/bin/tomcat-juli.jar"
for jar in "$java_dir"/tomcat9-*.jar; do
  [ -L "$jar" ] || continue # the unversioned names only (tomcat9-catalina.jar → …-9.0.70.jar)
  base="$(basename "$jar" .jar)"
  base="${base#tomcat9-}"
  case "$base" in juli) continue ;; esac
  skip_jar "$base" && continue
  case "$base" in
    catalina|jasper|jasper-el) name="$base.jar" ;;
    annotations-api|el-api|jsp-api|servlet-api|jaspic-api|websocket-api) name="$base.jar" ;;
    *) name="tomcat-$base.jar" ;;
  esac
  cp -L "$jar" "$t9/lib/$name"
done
# bootstrap.jar: the same classes as upstream's, cut from the catalina and util jars.
boot="$work/boot9"
mkdir -p "$boot"
(cd "$boot" && unzip -q "$t9/lib/catalina.jar" \
  'org/apache/catalina/startup/Bootstrap.class' 'org/apache/catalina/startup/CatalinaProperties.class' \
  'org/apache/catalina/startup/ClassLoaderFactory*.class' 'org/apache/catalina/startup/Constants.class' \
  'org/apache/catalina/startup/SafeForkJoinWorkerThreadFactory*.class' 'org/apache/catalina/startup/Tool.class' \
  'org/apache/catalina/startup/catalina.properties' 'org/apache/catalina/security/SecurityClassLoad.class' \
  'org/apache/catalina/webresources/war/*.class' \
  && unzip -q "$t9/lib/tomcat-util.jar" 'org/apache/tomcat/util/buf/UriUtil.class' \
  && mkdir -p META-INF && printf 'Manifest-Version: 1.0\nMain-Class: org.apache.catalina.startup.Bootstrap\n' > META-INF/MANIFEST.MF \
  && find . -exec touch -d @0 {} + && find . -type f | LC_ALL=C sort | zip -qX -D "$t9/bin/bootstrap.jar" -@)
[ -e "$java_dir/ecj.jar" ] && cp -L "$java_dir/ecj.jar" "$t9/lib/ecj.jar"
write_conf "$t9/conf"
# The default web.xml: tomcat10's servlets and mime types under the Servlet 4.0 (javaee) schema.
sed -e 's#xmlns="https://jakarta.ee/xml/ns/jakartaee"#xmlns="http://xmlns.jcp.org/xml/ns/javaee"#' \
  -e 's#https://jakarta.ee/xml/ns/jakartaee/web-app_6_0.xsd#http://xmlns.jcp.org/xml/ns/javaee/web-app_4_0.xsd#' \
  -e 's#https://jakarta.ee/xml/ns/jakartaee#http://xmlns.jcp.org/xml/ns/javaee#g' \
  -e 's#version="6.0"#version="4.0"#' "$t10_conf/web.xml" > "$t9/conf/web.xml"
v9="$(unzip -p "$t9/lib/catalina.jar" org/apache/catalina/util/ServerInfo.properties | sed -n 's/^server.number=//p')"
finish tomcat9 "${v9:-9.0}"
