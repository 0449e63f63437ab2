import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';

export const TEMPLATE_ROOT = fileURLToPath(new URL('../../templates/', import.meta.url));

/**
 * Compiles every template of one proxy kind once: `templates/<kind>/*.hbs`, each file also
 * registered as a partial under its base name. Private Handlebars instance, `noEscape` (these are
 * config files, not HTML: safety comes from the view model and render/guard.ts) and `strict`
 * (a missing field is an error, not an empty string).
 */
export function loadTemplates(
  kind: 'haproxy' | 'nginx' | 'keepalived',
  root = TEMPLATE_ROOT,
): Map<string, HandlebarsTemplateDelegate> {
  const hb = Handlebars.create();
  const dir = join(root, kind);
  const compiled = new Map<string, HandlebarsTemplateDelegate>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.hbs'))
    .sort()) {
    const name = basename(file, '.hbs');
    const source = readFileSync(join(dir, file), 'utf8');
    hb.registerPartial(name, source);
    compiled.set(name, hb.compile(source, { noEscape: true, strict: true }));
  }
  return compiled;
}
