// A cgo program for the hooks tests. What goes through libc (C code, os/user, the cgo DNS
// resolver) is visible to libguard; Go's own file, network and exec calls are raw syscalls and
// are not (documented limitation of the in-process layer; the kernel layer is the backstop).
package main

/*
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
static int c_open(const char *p) {
	int fd = open(p, O_RDONLY);
	if (fd < 0) return errno;
	close(fd);
	return 0;
}
*/
import "C"

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"unsafe"
)

func report(err error) {
	if err != nil {
		fmt.Println("ERR", err)
	} else {
		fmt.Println("OK")
	}
}

func main() {
	switch os.Args[1] {
	case "c-open":
		p := C.CString(os.Args[2])
		defer C.free(unsafe.Pointer(p))
		if e := C.c_open(p); e != 0 {
			fmt.Println("ERR", int(e))
		} else {
			fmt.Println("OK")
		}
	case "go-open":
		_, err := os.ReadFile(os.Args[2])
		report(err)
	case "user":
		_, err := user.Current()
		report(err)
	case "lookup":
		_, err := net.LookupHost(os.Args[2])
		report(err)
	default:
		fmt.Fprintln(os.Stderr, "unknown op")
		os.Exit(2)
	}
}
