// End-to-end test of the web console in real headless Chromium, driven by playwright-core.
//
// It walks the path a data bureau would show a visitor, as different users of a running
// `tongban demo`: the citizen reads their own record; the civil-affairs official searches for
// them, opens their 360° page (phone masked), follows a link to their room, and requests the
// phone; the window clerk, without grants, sees the same person masked; the admin approves the
// request; the official's page now shows the phone under the new grant; the citizen sees who
// read their record and why. Every page is saved as a screenshot in the output folder.
//
// Usage: node tests/e2e/console.mjs BASE_URL OUTPUT_DIR CITIZEN_KEY PASSWORD
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(process.env.PLAYWRIGHT_FROM || import.meta.url);
const { chromium } = require('playwright-core');

const [base, out, citizen, password] = process.argv.slice(2);
assert.ok(base && out && citizen && password, 'usage: console.mjs BASE OUT CITIZEN PASSWORD');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Without the background-networking flags Chromium tries to reach Google's hosts, which this
  // network refuses.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let shots = 0;

async function signIn(user) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/console/login`);
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForLoadState();
  assert.ok(!page.url().endsWith('/console/login'), `${user} could not sign in`);
  return { context, page };
}

async function shot(page, name) {
  shots += 1;
  await page.screenshot({ path: `${out}/${String(shots).padStart(2, '0')}-${name}.png`, fullPage: true });
}

// The value cell of a field's row on a 360° page (second cell of the row whose label matches).
async function fieldText(page, label) {
  return (await page.locator('tr', { has: page.locator('td', { hasText: new RegExp(`^${label}$`) }) })
    .locator('td').nth(1).innerText()).trim();
}

// A wrong password is refused.
{
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/console/login`);
  await page.fill('input[name=user]', 'minzheng01');
  await page.fill('input[name=password]', 'not-the-password');
  await page.click('button[type=submit]');
  assert.ok(page.url().endsWith('/console/login'));
  assert.match(await page.content(), /用户名或密码不正确/);
  await shot(page, 'login-refused');
  await context.close();
}

// 1. The citizen reads their own record: their name and birth date, for the official's search.
const me = await signIn(citizen);
assert.ok(me.page.url().endsWith('/console/me'), 'a citizen lands on their own page');
const name = await fieldText(me.page, '姓名/名称');
const birth = await fieldText(me.page, '出生日期');
assert.match(birth, /^\d{4}-\d{2}-\d{2}$/);
await shot(me.page, 'citizen-before');

// 2. The official: dashboard, search, the 360° page, a linked room.
const official = await signIn('minzheng01');
let page = official.page;
// The dashboard's figures are computed in the background after the server starts.
for (let i = 0; i < 60 && /统计正在计算/.test(await page.content()); i++) {
  await new Promise((r) => setTimeout(r, 500));
  await page.reload();
}
assert.match(await page.content(), /实有人口/);
assert.match(await page.content(), /<svg/);
await shot(page, 'dashboard');
await page.goto(`${base}/console/search?kind=person`);
await page.fill('input[name=name]', name);
await page.fill('input[name=birth_date]', birth);
await page.click('form button[type=submit]');
await page.waitForLoadState();
await shot(page, 'search');
const personLink = page.locator(`a[href="/console/person/${citizen}"]`);
assert.equal(await personLink.count(), 1, 'the search finds the citizen');
await personLink.click();
await page.waitForLoadState();
assert.equal(await fieldText(page, '姓名/名称'), name, 'the name is granted');
assert.match(await fieldText(page, '电话'), /\*\*\*/, 'the phone is masked without a grant');
await shot(page, 'person-masked');
const roomLink = page.locator('a[href^="/console/room/"]').first();
const room = await roomLink.getAttribute('href');
await roomLink.click();
await page.waitForLoadState();
assert.ok(page.url().endsWith(room));
assert.match(await page.content(), new RegExp(`/console/person/${citizen}`), 'the room links back to its residents');
await shot(page, 'room');
// English, and back.
await page.goto(`${base}/console/lang/en`);
await page.goto(`${base}${room}`);
assert.match(await page.content(), /Linked records/);
await shot(page, 'room-english');
await page.goto(`${base}/console/lang/zh`);

// 3. The official requests the phone.
await page.goto(`${base}/console/grants`);
await page.fill('input[name=fields]', 'phone');
await page.fill('input[name=purpose]', 'social_assistance.contact');
await page.fill('input[name=legal_basis]', '《社会救助暂行办法》');
await page.click('section form button[type=submit]');
await page.waitForLoadState();
const notice = await page.locator('#notice').innerText();
const grant = (notice.match(/G[0-9a-f]{12}/) || [])[0];
assert.ok(grant, `the request is filed: ${notice}`);
await shot(page, 'grant-requested');

// 4. The window clerk, without grants, sees the person masked.
const clerk = await signIn('window01');
await clerk.page.goto(`${base}/console/person/${citizen}`);
assert.match(await fieldText(clerk.page, '姓名/名称'), /\*/, 'no grant: the name is masked');
await shot(clerk.page, 'person-clerk');
await clerk.context.close();

// The community worker's dashboard counts their own community only.
const worker = await signIn('shequ01');
const dash = await worker.page.content();
assert.match(dash, /320576052001/);
assert.doesNotMatch(dash, /320576052002/, 'another community is out of the worker\'s jurisdiction');
await shot(worker.page, 'dashboard-community-worker');
await worker.context.close();

// 5. The data bureau approves.
const admin = await signIn('admin');
await admin.page.goto(`${base}/console/grants`);
await admin.page.locator('tr', { hasText: grant }).locator('button[value=yes]').click();
await admin.page.waitForLoadState();
assert.match(await admin.page.locator('#notice').innerText(), new RegExp(`已批准： ${grant}`));
await shot(admin.page, 'grant-approved');
await admin.page.goto(`${base}/console/audit`);
assert.match(await admin.page.content(), /✔/, 'the audit chain verifies');
await shot(admin.page, 'audit');
await admin.page.goto(`${base}/console/quality?source=grid_collection`);
assert.match(await admin.page.content(), /完整性/);
assert.match(await admin.page.content(), /citizen_id/, "the chosen source's fields are listed");
await shot(admin.page, 'quality');
await admin.page.goto(`${base}/console/catalogue`);
assert.match(await admin.page.content(), /library\.person/);
await shot(admin.page, 'catalogue');
await admin.page.goto(`${base}/console/alerts`);
assert.equal((await admin.page.goto(`${base}/console/alerts`)).status(), 200);
await shot(admin.page, 'alerts');
await admin.context.close();

// 6. The phone unmasks for the official (grants are reread within a second).
await new Promise((r) => setTimeout(r, 1200));
await page.goto(`${base}/console/person/${citizen}`);
assert.match(await fieldText(page, '电话'), /^\d{11}$|^0\d{2,3}-\d+$/, 'the phone shows under the grant');
assert.match(await page.content(), new RegExp(grant), 'the page names the grant');
await shot(page, 'person-unmasked');
await official.context.close();

// 7. The citizen sees who read their record, and for what.
await me.page.goto(`${base}/console/me`);
const accesses = await me.page.content();
assert.match(accesses, /minzheng01/);
assert.match(accesses, /window01/);
assert.match(accesses, new RegExp(grant), 'the read under the new grant is listed');
await shot(me.page, 'citizen-accesses');
await me.context.close();

await browser.close();
console.log(`console end-to-end: ${shots} pages checked, screenshots in ${out}`);
