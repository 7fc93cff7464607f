// Package web is RawFlow's dashboard: its pages (the dashboard and the preview page,
// hand-written HTML, CSS and JavaScript embedded in the binary) and the stats API they read
// (/api/v1/overview, …/series, …/breakdown, …/export.csv, the /api/v1/events stream), both
// served by a Dashboard on an echo router that may serve other routes too (cmd/rawflow's
// gateway node adds the dashboard's routes to the gateway's).
//
// The API reads a fleet's stats through Stats, an interface web declares: the channels,
// their totals and their time buckets (swarm.Bucket). Web knows nothing of the gateway;
// cmd/rawflow adapts a gateway and its registry to Stats. The JSON types of the API
// (Overview, Series, Breakdown, …) are the ones the handlers send, static/app.js reads and
// the tests decode.
//
// The pages talk to their own origin only; no request leaves it, so the dashboard works
// with no internet access. The preview page plays a channel with hls.js, which the build
// copies from node_modules into static/vendor/ (`make web`; the file is not committed).
// Without it the Go build still works and the preview page falls back to the browser's
// native HLS, if any; HasHLSJS says which build this is.
//
// The DOM the pages render (data-metric, data-chart, data-generation, window.__rawflow, …)
// is a contract with the browser tests in web/e2e, which web/webtest runs from Go tests.
//
// Where things are:
//
//	dashboard.go  Dashboard: New, Register (every route), Stats, Config; the CSV export
//	api.go        the API's JSON types
//	figures.go    the figures: overview, series, breakdown, from Stats
//	events.go     the event stream and the overview its streams share
//	web.go        the embedded pages and assets and their routes
//
// Usage:
//
//	dash, err := web.New(stats, web.Config{PricePerGB: 0.02, Currency: "USD"})
//	e := echo.New()
//	dash.Register(e) // /, /preview/{channel}, /ui/{file} and /api/v1/…
package web
