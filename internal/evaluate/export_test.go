package evaluate

// SetAsker replaces the pipeline the service asks through (tests: a
// deliberately leaky one).
func (s *Service) SetAsker(a Asker) { s.testAsker = a }
