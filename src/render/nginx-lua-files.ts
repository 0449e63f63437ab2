import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TEMPLATE_ROOT } from './templates.js';

/**
 * The Switchyard Lua module (templates/nginx/lua/switchyard/), delivered to every NGINX node as
 * files of its config (`lua/switchyard/*.lua` under configDir): the balancer, caps, stats, health
 * checks and the runtime channel travel with the config that calls them, so a node never runs a
 * config against another version of the module. Read once, when the renderer loads.
 */
const SOURCE_DIR = join(TEMPLATE_ROOT, 'nginx', 'lua', 'switchyard');

/** Where the module goes under configDir; `lua_package_path` points at its parent. */
export const LUA_DIR = 'lua';

export const LUA_MODULE_FILES: Readonly<Record<string, string>> = Object.fromEntries(
  readdirSync(SOURCE_DIR)
    .filter((f) => f.endsWith('.lua'))
    .sort()
    .map((f) => [`${LUA_DIR}/switchyard/${f}`, readFileSync(join(SOURCE_DIR, f), 'utf8')]),
);

/** Changes with the module's code: part of an NGINX node's structure, so a new module is a reload. */
export const LUA_MODULE_DIGEST = createHash('sha256')
  .update(JSON.stringify(Object.entries(LUA_MODULE_FILES)))
  .digest('hex')
  .slice(0, 16);
