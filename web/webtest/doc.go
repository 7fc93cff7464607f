// Package webtest runs the dashboard's browser test (web/e2e/dashboard.mjs: Node,
// playwright-core and the Debian chromium) from Go tests, against any gateway that serves
// the dashboard and the stats API: web's own test with a fake API, and cmd/rawflow's
// end-to-end tests with the real gateway.
package webtest
