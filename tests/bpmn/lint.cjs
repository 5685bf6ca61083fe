// usage: node lint.cjs CONFIG FILE.bpmn...  (NODE_PATH must hold bpmn-moddle and bpmnlint)
// Prints bpmn-moddle import warnings and bpmnlint reports (config: the repository's bpmn/.bpmnlintrc);
// exits 1 when there is any.
const fs = require('node:fs');
const { BpmnModdle } = require('bpmn-moddle');
const { Linter } = require('bpmnlint');
const NodeResolver = require('bpmnlint/lib/resolver/node-resolver');

async function check(config, file) {
  const problems = [];
  const { rootElement, warnings } = await new BpmnModdle().fromXML(fs.readFileSync(file, 'utf8'));
  for (const w of warnings) problems.push(`moddle: ${w.message}`);
  const linter = new Linter({ config, resolver: new NodeResolver() });
  for (const [rule, reports] of Object.entries(await linter.lint(rootElement))) {
    for (const r of reports) problems.push(`${rule} (${r.category}): ${r.id || ''} ${r.message}`);
  }
  return problems;
}

(async () => {
  const [configFile, ...files] = process.argv.slice(2);
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  let bad = 0;
  for (const file of files) {
    const problems = await check(config, file);
    console.log(`${file}: ${problems.length ? problems.length + ' problem(s)' : 'OK'}`);
    for (const p of problems) console.log(`  ${p}`);
    if (problems.length) bad++;
  }
  process.exit(bad ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
