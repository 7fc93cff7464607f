package tcpinfo

import "golang.org/x/sys/unix"

func read(fd uintptr) (Sender, bool) {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return Sender{}, false
	}
	inFlight := uint64(info.Unacked) * uint64(info.Snd_mss)
	return Sender{Acked: info.Bytes_acked, Queued: uint64(info.Notsent_bytes) + inFlight}, true
}

func limitUnsent(fd uintptr, n int) bool {
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n) == nil
}
