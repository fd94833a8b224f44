// The browser side the gateway serves: the demo page at `/` and the widget bundle under `/widget/`
// (built from src/widget/ into public/dist/ by `npm run build`; `npm start` and `npm test` build first).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type RequestHandler, type Response } from 'express';
import { ErrorCode } from '../shared/errors.ts';

const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

export interface StaticRoutesOptions {
  /** Demo mode (no key configured): the page offers a sign-in by name through POST /api/demo/token. */
  demo: boolean;
  /** Where index.html, demo.css and dist/ live (default: the repository's public/). */
  publicDir?: string;
}

// The page loads only its own scripts and styles and talks only to its own origin ('self' covers ws:/wss: to the
// same host in CSP 3). The widget's stylesheet is a constructed one, which style-src does not govern.
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  // Not hashed file names: browsers revalidate (ETag) instead of keeping a stale page or bundle.
  'Cache-Control': 'no-cache',
};

/**
 * `GET /` (and `/index.html`): the demo page, told which mode the server is in; `GET /demo.css`;
 * `GET /widget/chat-widget.js` (+ `.map`) and `/widget/demo.js`: the bundles, loadable from any origin (CORS `*`),
 * since embedding the widget in other sites is their purpose (what may connect is decided at the handshake).
 */
export function staticRoutes(opts: StaticRoutesOptions): Router {
  const publicDir = opts.publicDir ?? PUBLIC_DIR;
  const distDir = join(publicDir, 'dist');
  const mode = opts.demo ? 'demo' : 'key';
  const router = Router();

  const page: RequestHandler = async (_req, res, next) => {
    let html: string;
    try {
      html = await readFile(join(publicDir, 'index.html'), 'utf8');
    } catch (err) {
      return next(err);
    }
    res.set({ ...PAGE_HEADERS, 'Content-Type': 'text/html; charset=utf-8' });
    res.send(html.replace('data-mode="auto"', `data-mode="${mode}"`));
  };
  router.get(['/', '/index.html'], page);
  router.get('/demo.css', (_req, res, next) => {
    res.sendFile('demo.css', { root: publicDir, headers: PAGE_HEADERS }, (err) => err && next(err));
  });

  router.use(
    '/widget',
    express.static(distDir, {
      index: false,
      redirect: false,
      dotfiles: 'ignore',
      setHeaders: (res: Response) => {
        res.setHeader('Cache-Control', 'no-cache');
        res.setHeader('Access-Control-Allow-Origin', '*');
        res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
        res.setHeader('X-Content-Type-Options', 'nosniff');
      },
    }),
  );
  // Reached only when the bundle is missing: say how to make it rather than a bare 404.
  router.get(['/widget/chat-widget.js', '/widget/demo.js'], (_req, res) => {
    res.status(404).json({ error: { code: ErrorCode.NOT_FOUND, message: 'the widget is not built: run `npm run build`' } });
  });
  return router;
}
