import { toKeepalivedView, type KeepalivedInput } from './keepalived-view.js';
import { loadTemplates } from './templates.js';

const template = loadTemplates('keepalived').get('keepalived');
if (template === undefined) throw new Error('templates/keepalived/keepalived.hbs is missing');
const main = template;

/** A node's keepalived.conf; throws UnsafeValueError for a value the guard refuses. */
export function renderKeepalived(input: KeepalivedInput): string {
  return main(toKeepalivedView(input));
}
