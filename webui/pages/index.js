// The console's pages, in navigation order. app.js builds the nav and the router from this list.
//
// A page module default-exports:
//   {
//     path: '/bridges',            // may hold parameters: '/conferences/:id'
//     title: 'Bridges',            // the page's <h1> and document title (ctx.setTitle changes it)
//     roles: ['admin', 'noc'],     // who sees it in the nav and may open it
//     nav: true,                   // false: reachable by link only (e.g. the conference monitor)
//     async mount(main, ctx) { …; return () => { /* cleanup */ } },
//   }
// The shell draws the <h1> (focused after navigation) above `main`, an empty container for the
// page: pages start their own headings at <h2>. mount may return a cleanup function (or a
// promise of one); it runs when the user leaves the page.
//
// ctx = {
//   api,            // the api.js module: request, get, post, patch, put, del, downloadUrl, ApiError…
//   user,           // {username, roles, must_change_password}
//   hasRole(role),  // true when the user holds `role`
//   params,         // path parameters, e.g. {id: '42'} for /conferences/42
//   query,          // URLSearchParams of the location's query string
//   navigate(path), // History-API navigation inside the console
//   events,         // { on(type, fn) → off() } over ONE shared EventSource('/api/v1/events'),
//                   // which reconnects; types 'conference', 'participant', 'bridge', 'backup',
//                   // 'restore', 'upgrade' (fn gets the parsed JSON), and 'open' (fn() on every
//                   // (re)connection: refetch then)
//   setTitle(text), // changes the <h1> and the document title
//   announce(text), // says `text` through a polite live region (screen readers)
//   refreshVersion(), // reads the running version again for the header and the sign-in page
// }
// Shared helpers for pages: lib/ui.js (el, field, messageBox, busy, confirmAction, table,
// formatDateTime, formatDuration, …) and lib/time.js (time zones, wall-clock <-> instants).
// Every `off()` returned by ctx.events.on is also called for the page when it is left.

import dashboard from './dashboard.js';
import conferences from './conferences.js';
import conference from './conference.js';
import cdrs from './cdrs.js';
import bridges from './bridges.js';
import users from './users.js';
import audit from './audit.js';
import system from './system.js';
import licences from './licences.js';
import backups from './backups.js';
import upgrade from './upgrade.js';
import account from './account.js';

export default [dashboard, conferences, conference, cdrs, bridges, users, audit, system, licences, backups, upgrade, account];
