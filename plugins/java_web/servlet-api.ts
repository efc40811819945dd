/**
 * Which servlet API an app is built against, so it gets a Tomcat that speaks it: Tomcat 10.1
 * for `jakarta.servlet` (Jakarta EE 9+), Tomcat 9 for `javax.servlet` (Java EE 8 and before).
 * The compiled classes decide when they reference either package (they are what links at run
 * time); else the web.xml's schema does; else Jakarta.
 */
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readText } from '../api/files.ts';

export type ServletApi = 'jakarta' | 'javax';

export interface ServletApiGuess {
  api: ServletApi;
  reason: string;
}

const JAKARTA = Buffer.from('jakarta/servlet/');
const JAVAX = Buffer.from('javax/servlet/');
/** Enough to decide for any real app, without reading a huge one whole. */
const MAX_CLASSES = 500;
const MAX_CLASS_BYTES = 256 * 1024;

export function apiFromWebXml(xml: string): ServletApiGuess | undefined {
  if (/jakarta\.ee\/xml\/ns\/jakartaee/.test(xml)) return { api: 'jakarta', reason: 'web.xml uses the Jakarta EE schema' };
  if (/xmlns\.jcp\.org\/xml\/ns\/javaee|java\.sun\.com\/(xml\/ns\/(javaee|j2ee)|dtd\/web-app)/.test(xml)) {
    return { api: 'javax', reason: 'web.xml uses a Java EE (javax) schema' };
  }
  return undefined;
}

async function apiFromClasses(classesDir: string): Promise<ServletApiGuess | undefined> {
  let seen = 0;
  const buf = Buffer.alloc(MAX_CLASS_BYTES);
  const walk = async (dir: string): Promise<ServletApiGuess | undefined> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return undefined;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (seen >= MAX_CLASSES) return undefined;
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        const found = await walk(path);
        if (found) return found;
      } else if (e.isFile() && e.name.endsWith('.class')) {
        seen++;
        const fh = await open(path, 'r');
        try {
          const { bytesRead } = await fh.read(buf, 0, MAX_CLASS_BYTES, 0);
          const bytes = buf.subarray(0, bytesRead);
          const rel = path.slice(classesDir.length + 1);
          if (bytes.includes(JAKARTA)) return { api: 'jakarta', reason: `WEB-INF/classes/${rel} uses jakarta.servlet` };
          if (bytes.includes(JAVAX)) return { api: 'javax', reason: `WEB-INF/classes/${rel} uses javax.servlet` };
        } finally {
          await fh.close();
        }
      }
    }
    return undefined;
  };
  return walk(classesDir);
}

export async function servletApi(webappDir: string): Promise<ServletApiGuess> {
  const fromClasses = await apiFromClasses(join(webappDir, 'WEB-INF', 'classes'));
  if (fromClasses) return fromClasses;
  const xml = await readText(join(webappDir, 'WEB-INF', 'web.xml'));
  const fromXml = xml === undefined ? undefined : apiFromWebXml(xml);
  return fromXml ?? { api: 'jakarta', reason: 'nothing in the app names javax.servlet' };
}
