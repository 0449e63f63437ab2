import type { z } from 'zod';
import { ValidationError, type FieldIssue } from '../domain/errors.js';

/**
 * Parses `value` with `schema`, or throws a ValidationError whose issues name each field as
 * `<where>.<path>` (for example `body.members.2.port`), so a client knows exactly what to fix.
 */
export function validate<S extends z.ZodType>(schema: S, where: string, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.flatMap((issue) => {
    const base = [where, ...issue.path.map(String)].filter((p) => p !== '').join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: `${base}.${key}`, message: 'unknown field' }));
    }
    return [{ path: base, message: issue.message }];
  });
  const first = issues[0];
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  throw new ValidationError(first ? `${first.path}: ${first.message}${more}` : `invalid ${where}`, issues);
}
