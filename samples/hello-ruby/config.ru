# A minimal Rack app: answers every request with a greeting.
run ->(_env) { [200, { 'content-type' => 'text/plain' }, ["Hello from dropwarden! (ruby #{RUBY_VERSION})\n"]] }
