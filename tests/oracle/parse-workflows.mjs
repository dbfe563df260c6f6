// GitHub's own workflow parser (@actions/workflow-parser, npm) as an oracle: for each file
// named on the command line, one JSON line {file, errors}, errors being the parser's
// messages ("file (Line: L, Col: C): message"), empty when it accepts the file.
// Used by tests/tests/conformance/differential.rs; the package comes from
// $HYBRID_RUNNER_NPM_CLIENTS (installed and patched by .ci/test).
import { readFileSync } from "node:fs";

const dir = process.env.HYBRID_RUNNER_NPM_CLIENTS;
const parser = await import(`${dir}/@actions/workflow-parser/dist/index.js`);

for (const file of process.argv.slice(2)) {
  const content = readFileSync(file, "utf8");
  const result = parser.parseWorkflow({ name: file, content }, new parser.NoOperationTraceWriter());
  if (result.value) {
    await parser.convertWorkflowTemplate(result.context, result.value);
  }
  const errors = result.context.errors.getErrors().map((e) => e.message);
  console.log(JSON.stringify({ file, errors }));
}
