// What `convkit predict` reads: image files, folders (walked, image files only) and glob patterns,
// yielded one path at a time in sorted order, so that a folder of any size is never held as a list
// of its images (each directory's own entries are read and sorted at once). Problems with an
// argument (no such path, a folder or pattern with no images) go to onProblem, and the walk goes on.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IMAGE_EXTENSIONS } from '../io/index.js';

const isImageName = (name: string): boolean => IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
const hasGlob = (s: string): boolean => /[*?[]/.test(s);

/** A glob pattern (`*`, `?`, `[...]` within a path segment, `**` across segments) as a RegExp over '/'-separated paths. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        // '**/' matches zero or more whole directories; a trailing '**' anything below
        const slash = pattern[i + 2] === '/';
        re += slash ? '(?:[^/]*/)*' : '.*';
        i += slash ? 2 : 1;
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        re += `[${body[0] === '!' ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else re += /[\\^$.|+(){}]/.test(ch) ? `\\${ch}` : ch;
  }
  return new RegExp(`^${re}$`);
}

function* walk(dir: string, seen: Set<string>, filter: (p: string) => boolean): Generator<string> {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    return;
  }
  if (seen.has(real)) return; // a symlink cycle
  seen.add(real);
  let names: fs.Dirent[];
  try {
    names = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of names) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    let st: fs.Stats | undefined;
    if (e.isSymbolicLink()) {
      try {
        st = fs.statSync(p);
      } catch {
        continue;
      }
    }
    if (e.isDirectory() || st?.isDirectory()) yield* walk(p, seen, filter);
    else if ((e.isFile() || st?.isFile()) && filter(p)) yield p;
  }
}

/** The image paths the arguments name, in order; onProblem hears of arguments that yield none. */
export function* imagePaths(args: readonly string[], onProblem: (arg: string, message: string) => void): Generator<string> {
  for (const arg of args) {
    let count = 0;
    if (!fs.existsSync(arg) && hasGlob(arg)) {
      const norm = arg.split(path.sep).join('/');
      const segs = norm.split('/');
      const firstGlob = segs.findIndex(hasGlob);
      const base = segs.slice(0, firstGlob).join('/') || (norm.startsWith('/') ? '/' : '.');
      const re = globToRegExp(segs.slice(firstGlob).join('/'));
      const rel = (p: string): string => path.relative(base, p).split(path.sep).join('/');
      for (const p of walk(base, new Set(), (p) => isImageName(p) && re.test(rel(p)))) {
        count++;
        yield p;
      }
      if (count === 0) onProblem(arg, 'no image matches this pattern');
      continue;
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(arg);
    } catch {
      onProblem(arg, 'no such file or folder');
      continue;
    }
    if (st.isDirectory()) {
      for (const p of walk(arg, new Set(), isImageName)) {
        count++;
        yield p;
      }
      if (count === 0) onProblem(arg, `no images (${IMAGE_EXTENSIONS.join(' ')}) in this folder`);
    } else yield arg; // a file named on its own is tried whatever its extension
  }
}
