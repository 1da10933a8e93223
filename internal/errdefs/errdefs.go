// Package errdefs is berth's small set of error classes. Every package wraps
// its errors in one of these; the API server maps them to HTTP status codes in
// exactly one place (internal/api), and the CLI to exit codes.
package errdefs

import "errors"

// Class is the kind of failure an error belongs to.
type Class int

// The error classes. Unknown is the zero value: an internal error (HTTP 500).
const (
	Unknown Class = iota
	ClassNotFound
	ClassInvalidParameter
	ClassConflict
	ClassNotModified
	ClassUnavailable
	ClassForbidden
	ClassUnauthorized
	ClassNotImplemented
)

type classified struct {
	class Class
	err   error
}

func (e *classified) Error() string { return e.err.Error() }
func (e *classified) Unwrap() error { return e.err }

func wrap(c Class, err error) error {
	if err == nil {
		return nil
	}
	return &classified{class: c, err: err}
}

// NotFound marks err as "the named object does not exist" (404).
func NotFound(err error) error { return wrap(ClassNotFound, err) }

// InvalidParameter marks err as a bad request (400).
func InvalidParameter(err error) error { return wrap(ClassInvalidParameter, err) }

// Conflict marks err as conflicting with the current state (409).
func Conflict(err error) error { return wrap(ClassConflict, err) }

// NotModified marks a no-op such as starting a running container (304).
func NotModified(err error) error { return wrap(ClassNotModified, err) }

// Unavailable marks a temporarily unavailable dependency (503).
func Unavailable(err error) error { return wrap(ClassUnavailable, err) }

// Forbidden marks a refused operation (403).
func Forbidden(err error) error { return wrap(ClassForbidden, err) }

// Unauthorized marks missing or bad credentials (401).
func Unauthorized(err error) error { return wrap(ClassUnauthorized, err) }

// NotImplemented marks a feature berth does not provide (501).
func NotImplemented(err error) error { return wrap(ClassNotImplemented, err) }

// ClassOf returns the outermost class found in err's chain.
func ClassOf(err error) Class {
	var c *classified
	if errors.As(err, &c) {
		return c.class
	}
	return Unknown
}

// IsNotFound reports whether err is classified NotFound.
func IsNotFound(err error) bool { return ClassOf(err) == ClassNotFound }

// IsInvalidParameter reports whether err is classified InvalidParameter.
func IsInvalidParameter(err error) bool { return ClassOf(err) == ClassInvalidParameter }

// IsConflict reports whether err is classified Conflict.
func IsConflict(err error) bool { return ClassOf(err) == ClassConflict }

// IsNotModified reports whether err is classified NotModified.
func IsNotModified(err error) bool { return ClassOf(err) == ClassNotModified }

// HTTPStatus maps an error to the status code the Engine API uses for it.
func HTTPStatus(err error) int {
	switch ClassOf(err) {
	case ClassNotFound:
		return 404
	case ClassInvalidParameter:
		return 400
	case ClassConflict:
		return 409
	case ClassNotModified:
		return 304
	case ClassUnavailable:
		return 503
	case ClassForbidden:
		return 403
	case ClassUnauthorized:
		return 401
	case ClassNotImplemented:
		return 501
	}
	return 500
}
