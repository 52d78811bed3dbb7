// Bundles the browser scripts in web/src into web/dist, one file per page, for `npm run build`.
import { build } from 'esbuild';

await build({
  entryPoints: ['web/src/chat.ts', 'web/src/demo-token.ts', 'web/src/demo-cookie.ts'],
  outdir: 'web/dist',
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  platform: 'browser',
  minify: true,
  sourcemap: true,
  logLevel: 'warning',
});
