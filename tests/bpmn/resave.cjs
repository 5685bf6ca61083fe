// usage: node resave.cjs OUTDIR FILE.bpmn...  (NODE_PATH must hold bpmn-moddle and camunda-bpmn-moddle)
// Imports each diagram and exports it again the way a bpmn-js modeler saves it (Camunda Modeler adds the
// camunda descriptor), writing OUTDIR/<name>. Exits 1 on import warnings.
const fs = require('node:fs');
const path = require('node:path');
const { BpmnModdle } = require('bpmn-moddle');

const extensions = { camunda: require('camunda-bpmn-moddle/resources/camunda.json') };

(async () => {
  const [outDir, ...files] = process.argv.slice(2);
  let bad = 0;
  for (const file of files) {
    const moddle = new BpmnModdle(extensions);
    const { rootElement, warnings } = await moddle.fromXML(fs.readFileSync(file, 'utf8'));
    for (const w of warnings) { console.log(`${file}: ${w.message}`); bad++; }
    const { xml } = await moddle.toXML(rootElement, { format: true });
    fs.writeFileSync(path.join(outDir, path.basename(file)), xml);
  }
  process.exit(bad ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
