// Launch a custom run of a deployment from the Prefect UI form, as an operator would, in
// headless Chromium (Debian's /usr/bin/chromium driven by playwright-core), and wait until the
// run is final. Run by scripts/ui-check, which starts the server, worker and cluster.
//
//   node tests/ui/custom-run.mjs --ui http://127.0.0.1:4200 --deployment flow/name \
//        --nodes worker-1,worker-2 --window '* * * * *;Europe/Berlin;1h' \
//        --screenshot docs/prefect-ui-form.png
//
// Prints one JSON line: {"flow_run_id", "state", "seconds_to_final", ...}; exit 0 iff COMPLETED.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    ui: { type: 'string' },
    deployment: { type: 'string', default: 'rolling-node-maintenance/on-demand' },
    nodes: { type: 'string' },
    screenshot: { type: 'string' },
    timeout: { type: 'string', default: '300' },
    modules: { type: 'string', default: process.env.UI_CHECK_MODULES || '' },
    window: { type: 'string' }, // "cron;time zone;length", e.g. "0 1 * * *;Europe/Berlin;3h"
  },
});
if (!opts.ui || !opts.nodes || !opts.screenshot) {
  console.error('usage: custom-run.mjs --ui URL --nodes a,b --screenshot FILE [--deployment f/d]');
  process.exit(2);
}
// playwright-core lives outside the repository (scripts/ui-check installs it).
const require = createRequire(path.join(opts.modules || process.cwd(), 'noop.js'));
const { chromium } = require('playwright-core');

const api = `${opts.ui}/api`;
const nodes = opts.nodes.split(',').filter(Boolean);
const timeoutMs = Number(opts.timeout) * 1000;

async function getJson(url) {
  const answer = await fetch(url);
  if (!answer.ok) throw new Error(`${url}: HTTP ${answer.status} ${await answer.text()}`);
  return answer.json();
}

async function postJson(url, body) {
  const answer = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!answer.ok) throw new Error(`${url}: HTTP ${answer.status} ${await answer.text()}`);
  return answer.json();
}

const deployment = await getJson(`${api}/deployments/name/${opts.deployment}`);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ui-check-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1280, height: 900 },
});

let result = { deployment: opts.deployment, state: 'NOT STARTED' };
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`${opts.ui}/v2/deployments/deployment/${deployment.id}/run`, {
    waitUntil: 'networkidle',
  });

  // Each form field: a label ("Dry Run (Optional)") and its description, then the control.
  const field = (label) =>
    page
      .getByText(label, { exact: true })
      .locator('xpath=ancestor::div[contains(@class, "grid-cols-[1fr_auto]")][1]/..');

  const nodesField = field('Nodes (Optional)');
  for (const [i, node] of nodes.entries()) {
    await nodesField.getByRole('button', { name: 'Add item' }).click();
    await nodesField.getByRole('textbox').nth(i).fill(node);
  }
  await field('Selector (Optional)').getByText('None', { exact: true }).click();
  // A manual run inside an explicit maintenance window: cron + time zone + length.
  if (opts.window) {
    const [cron, timezone, length] = opts.window.split(';');
    const windowField = field('Window (Optional)');
    await windowField.getByText('Maintenance window', { exact: true }).click();
    await windowField.getByLabel('Cron', { exact: true }).fill(cron);
    await windowField.getByLabel('Timezone (Optional)', { exact: true }).fill(timezone);
    await windowField.getByLabel('Length', { exact: true }).fill(length);
  }
  const dryRun = page.getByLabel('Dry Run (Optional)', { exact: true });
  if ((await dryRun.getAttribute('aria-checked')) === 'true') await dryRun.click();
  if ((await dryRun.getAttribute('aria-checked')) !== 'false') throw new Error('dry run still on');

  // Fields the UI could not name (a model reference without a title shows as "Field").
  const unlabelled = await page.getByText('Field (Optional)', { exact: true }).count();
  const runName = `ui-check-${Date.now()}`;
  await page.getByLabel('Run Name').fill(runName);
  await page.screenshot({ path: opts.screenshot, fullPage: true });

  const submitted = Date.now();
  await page.getByRole('button', { name: 'Submit' }).click();
  // The UI goes back to the deployment's Runs tab; find the run it created by its name.
  let flowRunId;
  while (!flowRunId) {
    const found = await postJson(`${api}/flow_runs/filter`, {
      flow_runs: { name: { any_: [runName] } },
    });
    flowRunId = found[0]?.id;
    if (Date.now() - submitted > 30_000) throw new Error(`no flow run named ${runName} after 30s`);
    if (!flowRunId) await new Promise((r) => setTimeout(r, 500));
  }
  await page.goto(`${opts.ui}/v2/runs/flow-run/${flowRunId}`, { waitUntil: 'networkidle' });

  let run;
  for (;;) {
    run = await getJson(`${api}/flow_runs/${flowRunId}`);
    const type = run.state?.type;
    if (['COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'].includes(type)) break;
    if (Date.now() - submitted > timeoutMs) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const seconds = (Date.now() - submitted) / 1000;
  // The run page shows the final state too, as the operator watching it sees it.
  await page.reload({ waitUntil: 'networkidle' });
  const shown = await page
    .getByText(run.state?.name ?? 'Completed', { exact: true })
    .filter({ visible: true })
    .first()
    .waitFor({ state: 'visible', timeout: 15_000 })
    .then(() => true)
    .catch(() => false);
  const artifacts = await postJson(`${api}/artifacts/filter`, {
    artifacts: { key: { any_: ['rolling-node-maintenance-report'] } },
    flow_runs: { id: { any_: [flowRunId] } },
  });
  result = {
    deployment: opts.deployment,
    flow_run_id: flowRunId,
    state: run.state?.type,
    state_message: run.state?.message ?? null,
    parameters: run.parameters,
    seconds_to_final: Math.round(seconds * 10) / 10,
    state_shown_on_run_page: shown,
    fields_without_a_label: unlabelled,
    report: String(artifacts[0]?.data ?? '').split('\n').slice(0, 12).join('\n'),
    screenshot: opts.screenshot,
  };
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
process.exit(result.state === 'COMPLETED' ? 0 : 1);
