package server

// Option configures a Server in New.
type Option func(*Server) error

// WithAuth guards the registry with basic or token authentication.
func WithAuth(c AuthConfig) Option {
	return func(s *Server) error {
		a, err := newAuthorizer(c)
		if err != nil {
			return err
		}
		s.auth = a
		return nil
	}
}
