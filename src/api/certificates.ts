import { z } from 'zod';
import { createCertificateSchema, replaceCertificateSchema } from '../domain/certificate.js';
import { paging, slug } from '../domain/fields.js';
import type { CertificateService } from '../services/certificate-service.js';
import { ETAG, json, route, written, type RouteSpec } from './route.js';
import { certificatePageSchema, certificateSchema } from './responses/certificate-responses.js';
import { deletedSchema } from './responses/response-fields.js';

const tenantParams = z.strictObject({ tenant: slug });
const certificateParams = z.strictObject({ tenant: slug, certificate: slug });

/** Answers carry the certificate's metadata only: the private key is write-only. */
export function certificateRoutes(certificates: CertificateService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/certificates',
      summary: 'List certificates',
      tag: 'certificates',
      permission: 'tenant:read',
      params: tenantParams,
      query: z.strictObject(paging),
      responses: { 200: json(certificatePageSchema, 'A page of certificates') },
      handler: async ({ params, query }) => ({ body: await certificates.list(params.tenant, query) }),
    }),
    route({
      method: 'post',
      path: '/v1/tenants/:tenant/certificates',
      summary: 'Upload a certificate chain and its private key',
      tag: 'certificates',
      permission: 'tenant:write',
      params: tenantParams,
      body: createCertificateSchema,
      responses: { 201: json(certificateSchema, 'The certificate stored (its metadata)', ETAG) },
      handler: async ({ write, params, body }) => written(await certificates.create(write, params.tenant, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/certificates/:certificate',
      summary: 'Get a certificate',
      tag: 'certificates',
      permission: 'tenant:read',
      params: certificateParams,
      responses: { 200: json(certificateSchema, 'The certificate (its metadata)', ETAG) },
      handler: async ({ params }) => {
        const cert = await certificates.get(params.tenant, params.certificate);
        return { body: cert, etag: cert.revision };
      },
    }),
    route({
      method: 'put',
      path: '/v1/tenants/:tenant/certificates/:certificate',
      summary: 'Rotate a certificate: a new chain and key under the same name',
      tag: 'certificates',
      permission: 'tenant:write',
      params: certificateParams,
      body: replaceCertificateSchema,
      responses: { 200: json(certificateSchema, 'The certificate rotated (its metadata)', ETAG) },
      handler: async ({ write, params, body }) =>
        written(await certificates.replace(write, params.tenant, params.certificate, body)),
    }),
    route({
      method: 'delete',
      path: '/v1/tenants/:tenant/certificates/:certificate',
      summary: 'Delete a certificate (refused while a VIP serves it)',
      tag: 'certificates',
      permission: 'tenant:write',
      params: certificateParams,
      responses: { 200: json(deletedSchema, 'Deleted') },
      handler: async ({ write, params }) =>
        written(await certificates.delete(write, params.tenant, params.certificate)),
    }),
  ];
}
