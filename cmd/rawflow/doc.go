// Command rawflow is RawFlow's single binary: the gateway, the peer-assist proxy, the demo,
// the swarm benchmark, signed-URL tokens and the version. It is the only place that knows
// every concrete type and wires them.
//
//	main.go       the subcommands
//	flags.go      flags, RAWFLOW_* environment variables and --config files, in one place
//	gateway.go    rawflow gateway: config, registry, SIGHUP reload, drain
//	peer.go       rawflow peer
//	demo.go       rawflow demo (its simulated audience is package loadtest's)
//	open.go       demo --open: the default browser
//	swarm.go      rawflow swarm (package loadtest runs it)
//	nodes.go      a gateway (with the dashboard on one router) and a proxy bound to their listeners
//	dashboard.go  the gateway and its registry as web.Stats
//
// The end-to-end tests (real ffmpeg origins and players, real Redis, headless Chromium)
// live in this package's *_test.go files.
package main
