package sources

import "fmt"

// Reword returns an error whose message is its own but which still unwraps to cause, so a
// kind can replace a client library's wording ("nats: API error: code=404 err_code=10014
// description=consumer not found") with one that names the query's object (`nats: consumer
// "ORDERS/workers": consumer not found`) while errors.Is and errors.As keep working.
func Reword(cause error, format string, args ...any) error {
	return &redactedError{msg: fmt.Sprintf(format, args...), err: cause}
}
