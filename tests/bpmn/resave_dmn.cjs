// usage: node resave_dmn.cjs OUTDIR FILE.dmn...  (NODE_PATH must hold dmn-moddle)
// Imports each decision table and exports it again the way dmn-js (Camunda Modeler's DMN editor) saves it,
// writing OUTDIR/<name>. Exits 1 on import warnings.
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

(async () => {
  const { DmnModdle } = await import(pathToFileURL(require.resolve('dmn-moddle')).href); // an ES module
  const [outDir, ...files] = process.argv.slice(2);
  let bad = 0;
  for (const file of files) {
    const moddle = new DmnModdle();
    const { rootElement, warnings } = await moddle.fromXML(fs.readFileSync(file, 'utf8'));
    for (const w of warnings) { console.log(`${file}: ${w.message}`); bad++; }
    const { xml } = await moddle.toXML(rootElement, { format: true });
    fs.writeFileSync(path.join(outDir, path.basename(file)), xml);
  }
  process.exit(bad ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
