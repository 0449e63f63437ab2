import type { z } from 'zod';
import { ValidationError, type FieldIssue } from '../domain/errors.js';
import { PROTO_KEY_MESSAGE, protoKeyPaths } from '../domain/proto-keys.js';

/**
 * Parses `value` with `schema`, or throws a ValidationError whose issues name each field as
 * `<where>.<path>` (for example `body.members.2.port`), so a client knows exactly what to fix.
 */
export function validate<S extends z.ZodType>(schema: S, where: string, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  const at = (path: readonly PropertyKey[]) => [where, ...path.map(String)].filter((p) => p !== '').join('.');
  const protoIssues = protoKeyPaths(value).map((path) => ({ path: at(path), message: PROTO_KEY_MESSAGE }));
  if (result.success && protoIssues.length === 0) return result.data;
  const issues: FieldIssue[] = (result.success ? [] : result.error.issues).flatMap((issue) => {
    const base = at(issue.path);
    if (issue.code === 'unrecognized_keys') {
      // A strict object reports an undeclared __proto__ itself: name it once.
      return issue.keys
        .filter((key) => key !== '__proto__')
        .map((key) => ({ path: `${base}.${key}`, message: 'unknown field' }));
    }
    return [{ path: base, message: issue.message }];
  });
  issues.push(...protoIssues);
  const first = issues[0];
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  throw new ValidationError(first ? `${first.path}: ${first.message}${more}` : `invalid ${where}`, issues);
}
