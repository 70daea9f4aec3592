package main

import (
	"net"
	"syscall"
)

// quickAck puts a TCP connection into quick-ACK mode (TCP_QUICKACK, tcp(7)):
// segments that arrive next are acknowledged at once instead of after the
// delayed-ACK timer. Linux leaves the mode on its own, so callers re-arm it
// before each read.
func quickAck(conn net.Conn) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
