#!/usr/bin/env node
// Thin launcher: the compiled entry point lives in dist/ (built by `npm run build`).
import('../dist/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('tokengate: dist/ is missing; run `npm run build` first')
    process.exit(1)
  }
  throw err
})
