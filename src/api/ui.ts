import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';

/** The dashboard's static files: HTML, a few ES modules and a stylesheet, served as they are. */
export const UI_ROOT = fileURLToPath(new URL('../../ui/', import.meta.url));

/**
 * The page may load only its own files and call only this origin's API: no inline script or
 * style, no frames, no plugins, nothing from elsewhere. Data is put in the page with textContent.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': UI_CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  // Small files: always revalidate, so an upgrade of the control plane is seen at once.
  'Cache-Control': 'no-cache',
};

/**
 * The operators' dashboard (mounted at `/ui`). It is a client of the REST API like any other: it
 * holds no data and no token; the page asks for a token and sends it as `Authorization: Bearer`,
 * so every read is authorised and tenant-scoped by the API itself. Not part of the REST API:
 * the OpenAPI document lists only its page (app.ts, PUBLIC_ENDPOINTS), not its scripts and styles.
 */
export function uiRouter(root: string = UI_ROOT): Router {
  const router = express.Router({ strict: true });
  router.use((req: Request, res: Response, next: NextFunction) => {
    for (const [name, value] of Object.entries(HEADERS)) res.setHeader(name, value);
    // `/ui` → `/ui/`, so the page's relative links resolve under the mount point.
    const path = req.originalUrl.split('?')[0] ?? '';
    if ((req.method === 'GET' || req.method === 'HEAD') && req.path === '/' && path === req.baseUrl) {
      const query = req.originalUrl.slice(path.length);
      res.redirect(301, `${req.baseUrl}/${query}`);
      return;
    }
    next();
  });
  router.use(
    express.static(root, {
      index: 'index.html',
      dotfiles: 'ignore',
      etag: true,
      lastModified: true,
      // Keep the Cache-Control set above (serve-static would send `public, max-age=0`).
      cacheControl: false,
      redirect: false,
      fallthrough: true,
    }),
  );
  return router;
}
