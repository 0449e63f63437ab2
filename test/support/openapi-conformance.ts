import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

type Json = Record<string, any>;

export interface Answer {
  readonly method: string;
  /** The request path, without its query. */
  readonly path: string;
  readonly status: number;
  readonly contentType: string | null;
  /** The body, parsed when it is JSON; '' or null when there is none. */
  readonly body: unknown;
  readonly headers?: { get(name: string): string | null };
}

const DOCUMENT_ID = 'openapi.json';
const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
const normal = (contentType: string) => contentType.toLowerCase().replace(/\s+/g, '');
/** `application/json` is answered as `application/json; charset=utf-8`; a type documented with parameters must match them all. */
const sameType = (documented: string, answered: string) =>
  normal(documented) === normal(answered) ||
  (!documented.includes(';') && normal(answered).split(';')[0] === normal(documented));

/**
 * Checks an answer against the OpenAPI document the server publishes: the status is documented
 * for the operation, the content type is the one documented, and a JSON body matches its schema
 * (schemas forbid fields they do not list, so a field the document lacks is caught too). The
 * test harness runs every answer of every API test through it.
 */
export class OpenApiConformance {
  private readonly ajv = new Ajv2020({ strict: false, validateSchema: false, allErrors: true });
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly paths: { readonly template: string; readonly re: RegExp; readonly params: number }[];

  constructor(private readonly doc: Json) {
    (addFormats as unknown as (ajv: Ajv2020) => void)(this.ajv);
    this.ajv.addSchema({ ...doc, $id: DOCUMENT_ID });
    this.paths = Object.keys(doc.paths)
      .map((template) => ({
        template,
        re: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{\w+\\?\}/g, '[^/]+')}$`),
        params: (template.match(/\{/g) ?? []).length,
      }))
      // A literal segment wins over a parameter: /v1/tenants/{tenant}/status before /v1/tenants/{tenant}/{x}.
      .sort((a, b) => a.params - b.params);
  }

  /** What is wrong with the answer, or null when the document describes it (or documents no such operation). */
  problem(answer: Answer): string | null {
    const method = answer.method.toLowerCase();
    const template = this.paths.find((p) => p.re.test(answer.path) && this.doc.paths[p.template][method])?.template;
    if (template === undefined) return null;
    const where = `${answer.method} ${answer.path} → ${answer.status}`;
    const declared = this.doc.paths[template][method].responses[String(answer.status)] as Json | undefined;
    if (declared === undefined)
      return `${where}: status ${answer.status} is not documented for ${method.toUpperCase()} ${template}`;
    // Errors are documented once, under components.responses, and referred to.
    const base =
      typeof declared.$ref === 'string'
        ? ['components', 'responses', declared.$ref.split('/').pop()!]
        : ['paths', template, method, 'responses', String(answer.status)];
    const response = (typeof declared.$ref === 'string' ? this.doc.components.responses[base[2]!] : declared) as Json;
    for (const [name, header] of Object.entries((response.headers ?? {}) as Record<string, Json>)) {
      if (header.required === true && answer.headers !== undefined && answer.headers.get(name) === null)
        return `${where}: the documented header ${name} is missing`;
    }
    const content = response.content as Record<string, { schema: Json }> | undefined;
    const hasBody = answer.body !== null && answer.body !== '' && answer.body !== undefined;
    if (content === undefined)
      return hasBody
        ? `${where}: documented without a body, answered ${JSON.stringify(answer.body).slice(0, 200)}`
        : null;
    const mediaType = Object.keys(content).find((m) => answer.contentType !== null && sameType(m, answer.contentType));
    if (mediaType === undefined)
      return `${where}: content type ${answer.contentType} is not one of ${Object.keys(content).join(', ')}`;
    if (!mediaType.startsWith('application/json')) return null;
    const schemaRef = `${DOCUMENT_ID}#/${pointer(...base, 'content', mediaType, 'schema')}`;
    let validate = this.validators.get(schemaRef);
    if (validate === undefined) {
      validate = this.ajv.compile({ $ref: schemaRef });
      this.validators.set(schemaRef, validate);
    }
    if (validate(answer.body)) return null;
    const errors = (validate.errors ?? [])
      .slice(0, 5)
      .map(
        (e) =>
          `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`,
      );
    return `${where}: the body does not match the documented schema: ${errors.join('; ')}`;
  }
}
