// Command netload is the traffic side of bench/network.sh. It is built
// static (CGO_ENABLED=0) so the script can bind-mount it into a busybox
// container of either engine.
//
//	netload sink [-listen :5000]            in a container: per connection, read to EOF, answer the byte count
//	netload send -addr 127.0.0.1:P [-mb 1024 -runs 5]
//	                                        on the host: stream bytes to the sink through a published port,
//	                                        print each run's MB/s and the median
//	netload dns -name web [-n 200]          in a container: time A queries of name against the first
//	                                        nameserver of /etc/resolv.conf, print the median and p90 in µs
//
// send refuses an address that is not on loopback: the benchmark's traffic
// stays on the host.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netload sink|send|dns [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "sink":
		err = sink(os.Args[2:])
	case "send":
		err = send(os.Args[2:])
	case "dns":
		err = dns(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netload:", err)
		os.Exit(1)
	}
}

func sink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	listen := fs.String("listen", ":5000", "TCP address to listen on")
	fs.Parse(args)
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return fmt.Errorf("accept on %s: %w", *listen, err)
		}
		go func() {
			defer c.Close()
			n, _ := io.Copy(io.Discard, c)
			fmt.Fprintf(c, "%d\n", n)
		}()
	}
}

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port of the published sink (loopback only)")
	mb := fs.Int("mb", 1024, "MiB to stream per run")
	runs := fs.Int("runs", 5, "runs")
	wait := fs.Duration("wait", 20*time.Second, "how long to wait for the sink to answer")
	fs.Parse(args)
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not on loopback", *addr)
	}
	// The published port may answer before the sink listens (a proxy
	// accepts, then drops): probe with one byte until the count comes back.
	deadline := time.Now().Add(*wait)
	for {
		if _, err := stream(*addr, 1); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("sink at %s not ready after %s: %w", *addr, *wait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	total := int64(*mb) << 20
	var rates []float64
	for i := 0; i < *runs; i++ {
		d, err := stream(*addr, total)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		rate := float64(total) / 1e6 / d.Seconds()
		rates = append(rates, rate)
		fmt.Printf("run %d: %d MiB in %.2fs = %.0f MB/s\n", i+1, *mb, d.Seconds(), rate)
	}
	slices.Sort(rates)
	fmt.Printf("median_MBps %.0f\n", rates[len(rates)/2])
	return nil
}

// stream sends n bytes, half-closes, and waits for the sink's count: the
// time covers delivery to the container, not just the host's send buffer.
func stream(addr string, n int64) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	for left := n; left > 0; {
		chunk := buf
		if left < int64(len(chunk)) {
			chunk = chunk[:left]
		}
		w, err := c.Write(chunk)
		if err != nil {
			return 0, fmt.Errorf("write to %s: %w", addr, err)
		}
		left -= int64(w)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, fmt.Errorf("half-close %s: %w", addr, err)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read the sink's count from %s: %w", addr, err)
	}
	got, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil || got != n {
		return 0, fmt.Errorf("sink at %s counted %q bytes, sent %d", addr, line, n)
	}
	return time.Since(start), nil
}

func dns(args []string) error {
	fs := flag.NewFlagSet("dns", flag.ExitOnError)
	name := fs.String("name", "", "name to look up (A)")
	n := fs.Int("n", 200, "lookups")
	fs.Parse(args)
	server, err := nameserver("/etc/resolv.conf")
	if err != nil {
		return err
	}
	c, err := net.Dial("udp", net.JoinHostPort(server, "53"))
	if err != nil {
		return fmt.Errorf("dial resolver %s: %w", server, err)
	}
	defer c.Close()
	var lat []time.Duration
	buf := make([]byte, 1500)
	for i := 0; i < *n; i++ {
		id := uint16(rand.Uint32())
		q := query(id, *name)
		start := time.Now()
		if _, err := c.Write(q); err != nil {
			return fmt.Errorf("query %s at %s: %w", *name, server, err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			m, err := c.Read(buf)
			if err != nil {
				return fmt.Errorf("answer for %s from %s: %w", *name, server, err)
			}
			if m < 12 || binary.BigEndian.Uint16(buf) != id {
				continue // a late answer to an earlier query
			}
			if rcode := buf[3] & 0xf; rcode != 0 || binary.BigEndian.Uint16(buf[6:]) == 0 {
				return fmt.Errorf("%s from %s: rcode %d, %d answers", *name, server, rcode, binary.BigEndian.Uint16(buf[6:]))
			}
			break
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	fmt.Printf("server %s lookups %d median_us %d p90_us %d\n", server, len(lat),
		lat[len(lat)/2].Microseconds(), lat[len(lat)*9/10].Microseconds())
	return nil
}

// query is a DNS message asking for name's A record, recursion desired.
func query(id uint16, name string) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD; QDCOUNT 1
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return append(b, 0, 0, 1, 0, 1) // root; QTYPE A; QCLASS IN
}

func nameserver(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			return f[1], nil
		}
	}
	return "", errors.New("no nameserver in " + path)
}
