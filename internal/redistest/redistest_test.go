package redistest

import (
	"strings"
	"testing"
)

func TestStopAndRestart(t *testing.T) {
	s := StartServer(t)
	if err := s.probe(); err != nil {
		t.Fatalf("started server: %v", err)
	}
	s.Stop()
	if err := s.probe(); err == nil {
		t.Fatal("stopped server still answers")
	}
	s.Stop() // stopping twice is harmless
	s.Start()
	if err := s.probe(); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}

func TestSecure(t *testing.T) {
	s := StartSecure(t)
	if err := s.probe(); err != nil {
		t.Fatalf("TLS and AUTH: %v", err)
	}
	if !strings.HasPrefix(s.URL(), "rediss://:"+s.Password()+"@127.0.0.1:") {
		t.Fatalf("URL %q", s.URL())
	}
	plain := &Server{port: s.port}
	if err := plain.probe(); err == nil {
		t.Fatal("a plain connection was answered")
	}
	wrong := &Server{port: s.port, secure: &secure{password: "wrong", roots: s.secure.roots}}
	if err := wrong.probe(); err == nil {
		t.Fatal("a wrong password was accepted")
	}
}
