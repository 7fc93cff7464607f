// Package web is RawFlow's dashboard and preview page: hand-written HTML, CSS and JavaScript
// embedded in the binary and served by Handler.
//
// The pages only consume the gateway's stats API (/api/v1/overview, …/series, …/breakdown,
// the /api/v1/events stream, …/export.csv) from the same origin; no request leaves it, so
// the dashboard works with no internet access. The preview page plays a channel with
// hls.js, which the build copies from node_modules into static/vendor/ (`make web`; the file
// is not committed). Without it the Go build still works and the preview page falls back to
// the browser's native HLS, if any; HasHLSJS says which build this is.
//
// The DOM the pages render (data-metric, data-chart, data-generation, window.__rawflow, …)
// is a contract with the browser tests in web/e2e, which web/webtest runs from Go tests.
//
//	mux.Handle("/", web.Handler()) // serves /, /preview/{channel} and /ui/{file}
package web
