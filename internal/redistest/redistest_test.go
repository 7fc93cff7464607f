package redistest

import "testing"

func TestStopAndRestart(t *testing.T) {
	s := StartServer(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("started server: %v", err)
	}
	s.Stop()
	if err := ping(s.Addr()); err == nil {
		t.Fatal("stopped server still answers")
	}
	s.Stop() // stopping twice is harmless
	s.Start()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}
