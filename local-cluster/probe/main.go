// probe: the one program of the real node tests' image (built static, in an image made from
// scratch): it echoes, sleeps, serves HTTP, fetches a URL and looks up names.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe echo WORDS | sleep | serve PORT [N] | get URL [TRIES] | lookup NAME")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "echo":
		fmt.Println(strings.Join(os.Args[2:], " "))
	case "sleep":
		wait()
	case "serve":
		// serve PORT [N]: until SIGTERM, or until N requests have been answered (then exit 0)
		name, _ := os.Hostname()
		answered := make(chan struct{}, 1024)
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s\n", name)
			answered <- struct{}{}
		})
		fmt.Printf("serving on :%s\n", os.Args[2])
		go func() {
			if err := http.ListenAndServe(":"+os.Args[2], nil); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}()
		if len(os.Args) > 3 {
			count, _ := strconv.Atoi(os.Args[3])
			for i := 0; i < count; i++ {
				<-answered
			}
			time.Sleep(200 * time.Millisecond) // the last answer on its way
			return
		}
		wait()
	case "get":
		// get URL [TRIES]: TRIES attempts (1 by default), a second apart, until one answers
		tries := 1
		if len(os.Args) > 3 {
			tries, _ = strconv.Atoi(os.Args[3])
		}
		client := http.Client{Timeout: 5 * time.Second}
		for try := 1; ; try++ {
			resp, err := client.Get(os.Args[2])
			if err == nil {
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				fmt.Print(string(body))
				break
			}
			fmt.Fprintln(os.Stderr, err)
			if try >= tries {
				os.Exit(1)
			}
			time.Sleep(time.Second)
		}
	case "lookup":
		addrs, err := net.LookupHost(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(strings.Join(addrs, " "))
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// wait until SIGTERM or SIGINT: as PID 1 in a container, a signal with no handler is ignored
func wait() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}
