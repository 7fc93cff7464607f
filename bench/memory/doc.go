// Command memory measures, in one run on this machine and all on 127.0.0.1, what issue 9
// asks of RawFlow's memory and tracker (make bench-memory):
//
//  1. the gateway's RSS per channel against the bytes its windows hold (1, 4 and 16
//     channels of 1 MB segments every second, against a baseline gateway with one channel
//     of 1 KB segments), and the bar "RSS ≤ 1.5 × window bytes + 50 MiB per channel";
//  2. the gateway's RSS with 1,000 concurrent slow players, each on its own connection with
//     a small receive buffer, reading a 1 MB segment at about 10 KB/s;
//  3. the proxy's RSS against its cache size, once it has fetched 1.5 × its cache;
//  4. the tracker's announce and lookup throughput through the gateway with a real Redis,
//     against go-redis PINGs and the registry's own calls at the same concurrency.
//
// It builds the rawflow binary once and runs the gateways and proxies as child processes
// (their RSS read from /proc/PID/status), with an in-process live HLS origin. Children are
// killed on every way out. It prints a table and, with --json FILE, writes every number.
//
//	go run ./bench/memory [--channels 1,4,16] [--json FILE] [--phases gateway,slow,proxy,tracker]
package main
