//go:build !linux

package tcpinfo

func read(uintptr) (Sender, bool) { return Sender{}, false }

func limitUnsent(uintptr, int) bool { return false }
