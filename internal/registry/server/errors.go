package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	specs "github.com/opencontainers/distribution-spec/specs-go/v1"
)

// regError is a distribution-spec error: a code from the spec's table, the
// HTTP status that goes with it here, and a message. It is the one place
// where failures become status codes; any other error is a 500.
type regError struct {
	Code    string
	Status  int
	Message string
	Detail  string
}

func (e *regError) Error() string { return e.Code + ": " + e.Message }

func newErr(code string, status int, format string, a ...any) *regError {
	return &regError{Code: code, Status: status, Message: fmt.Sprintf(format, a...)}
}

func errBlobUnknown(d string) error {
	return newErr("BLOB_UNKNOWN", http.StatusNotFound, "blob %s unknown to the repository", d)
}
func errUploadUnknown(id string) error {
	return newErr("BLOB_UPLOAD_UNKNOWN", http.StatusNotFound, "upload %s unknown", id)
}
func errDigestInvalid(format string, a ...any) error {
	return newErr("DIGEST_INVALID", http.StatusBadRequest, format, a...)
}
func errManifestUnknown(ref string) error {
	return newErr("MANIFEST_UNKNOWN", http.StatusNotFound, "manifest %s unknown to the repository", ref)
}
func errManifestInvalid(format string, a ...any) error {
	return newErr("MANIFEST_INVALID", http.StatusBadRequest, format, a...)
}
func errManifestBlobUnknown(d string) error {
	return newErr("MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest, "manifest references %s, which the repository does not have", d)
}
func errNameInvalid(name string) error {
	return newErr("NAME_INVALID", http.StatusBadRequest, "invalid repository name %q", name)
}
func errNameUnknown(name string) error {
	return newErr("NAME_UNKNOWN", http.StatusNotFound, "repository %s not known to the registry", name)
}
func errTagInvalid(tag string) error {
	return newErr("TAG_INVALID", http.StatusBadRequest, "invalid tag %q", tag)
}
func errSizeInvalid(format string, a ...any) error {
	return newErr("SIZE_INVALID", http.StatusBadRequest, format, a...)
}
func errUnsupported(format string, a ...any) error {
	return newErr("UNSUPPORTED", http.StatusMethodNotAllowed, format, a...)
}
func errRangeInvalid(format string, a ...any) error {
	return newErr("BLOB_UPLOAD_INVALID", http.StatusRequestedRangeNotSatisfiable, format, a...)
}
func errUploadInvalid(format string, a ...any) error {
	return newErr("BLOB_UPLOAD_INVALID", http.StatusBadRequest, format, a...)
}

// writeError sends err as the spec's {"errors":[...]} body.
func writeError(w http.ResponseWriter, err error) {
	var re *regError
	if !errors.As(err, &re) {
		re = &regError{Code: "UNKNOWN", Status: http.StatusInternalServerError, Message: err.Error()}
	}
	body, _ := json.Marshal(specs.ErrorResponse{Errors: []specs.ErrorInfo{{Code: re.Code, Message: re.Message, Detail: re.Detail}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(re.Status)
	w.Write(body)
}
