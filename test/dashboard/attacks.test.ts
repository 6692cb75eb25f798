import t from 'tap'
import { buildTestApp } from '../helper.js'

// Attacks on the HTML pages the service serves (/dashboard, /pay/{id}, /till) that need no browser: what the
// served HTML itself allows before, or without, its script.

t.test('a login form submitted before its script has run never puts the password in a URL', async (t) => {
  // The pages' scripts are deferred: until dashboard.js has run, its login form was on screen and submitted the
  // browser's own way, a GET of /dashboard?username=...&password=..., so the password went into the address bar,
  // the history and every access log on the way. Each form with a password is method="post" (a POST body is
  // not logged and not kept in the history), and its view stays hidden until the page's script shows it.
  const ctx = await buildTestApp(t)
  for (const url of ['/dashboard', '/till', '/pay/0190a000-0000-7000-8000-000000000000']) {
    const html = (await ctx.app.inject({ method: 'GET', url })).body
    const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)].filter(m => /type="password"/.test(m[2]))
    t.ok(forms.length > 0, `${url} has a login form`)
    for (const [, attrs] of forms) t.match(attrs, /\smethod="post"/, `${url}: the login form posts`)
    const view = /<section id="login-view"([^>]*)>/.exec(html)
    t.match(view?.[1] ?? '', /\shidden(\s|$)/, `${url}: the login view is hidden until the script shows it`)
  }
})
