// Command hello is the quickstart image of berth: a static program that
// greets, in the spirit of docker's hello-world, and echoes its arguments so
// a test can check that the command line reached the container.
package main

import (
	"fmt"
	"os"
	"strings"
)

const greeting = `
Hello from berth!
This message shows that your installation appears to be working correctly.

To generate this message, berth:
 1. built or loaded the "hello" image (FROM scratch, one static Go binary),
 2. created a container from it and started /hello,
 3. streamed its output to your terminal.
`

func main() {
	fmt.Print(greeting)
	if len(os.Args) > 1 {
		fmt.Printf("\nYou said: %s\n", strings.Join(os.Args[1:], " "))
	}
}
