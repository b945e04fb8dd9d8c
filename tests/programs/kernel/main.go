// A Go agent stand-in for the kernel-layer tests (tests/tests/kernel_layer.rs): everything it
// does is a raw syscall that no LD_PRELOAD hook sees, whether built static or with cgo.
//
//	kernelprobe exec PROG ARGS...   run PROG (os/exec), its output passed through
//	kernelprobe dial HOST:PORT      TCP connect (net.Dial)
//	kernelprobe udp HOST:PORT       one datagram from an unconnected socket (sendto)
//	kernelprobe rm PATH             os.Remove (unlinkat)
//	kernelprobe write PATH          os.WriteFile (openat O_WRONLY|O_CREAT|O_TRUNC)
//	kernelprobe mv OLD NEW          os.Rename (renameat)
//	kernelprobe mkdirall PATH       os.MkdirAll (mkdirat)
//	kernelprobe read PATH           os.ReadFile (openat O_RDONLY): prints "OK <content>"
//	kernelprobe rmat DIR NAME       unlinkat relative to an open directory fd
//
// Prints "OK" or "ERR <errno>" (0 when the error carries none) as its last line.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"unsafe"
)

func report(err error) {
	if err == nil {
		fmt.Println("OK")
		return
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		fmt.Printf("ERR %d\n", int(errno))
	} else {
		fmt.Printf("ERR 0 %v\n", err)
	}
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: kernelprobe exec PROG ARGS... | dial HOST:PORT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "exec":
		c := exec.Command(os.Args[2], os.Args[3:]...)
		c.Stdout = os.Stdout
		c.Stderr = os.Stderr
		report(c.Run())
	case "dial":
		conn, err := net.Dial("tcp", os.Args[2])
		if err == nil {
			conn.Close()
		}
		report(err)
	case "udp":
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err == nil {
			var dst *net.UDPAddr
			dst, err = net.ResolveUDPAddr("udp", os.Args[2])
			if err == nil {
				_, err = pc.WriteTo([]byte("x"), dst)
			}
			pc.Close()
		}
		report(err)
	case "rm":
		report(os.Remove(os.Args[2]))
	case "write":
		report(os.WriteFile(os.Args[2], []byte("overwritten\n"), 0o644))
	case "mv":
		report(os.Rename(os.Args[2], os.Args[3]))
	case "mkdirall":
		report(os.MkdirAll(os.Args[2], 0o755))
	case "read":
		b, err := os.ReadFile(os.Args[2])
		if err == nil {
			fmt.Printf("OK %s", b)
			return
		}
		report(err)
	case "rmat":
		dfd, err := syscall.Open(os.Args[2], syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err == nil {
			var p *byte
			p, err = syscall.BytePtrFromString(os.Args[3])
			if err == nil {
				_, _, e := syscall.Syscall(syscall.SYS_UNLINKAT, uintptr(dfd), uintptr(unsafe.Pointer(p)), 0)
				if e != 0 {
					err = e
				}
			}
			syscall.Close(dfd)
		}
		report(err)
	default:
		os.Exit(2)
	}
}
