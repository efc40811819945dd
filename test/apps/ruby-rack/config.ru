run ->(env) { [200, { 'content-type' => 'text/plain' }, ["Hello from rack (#{ENV['RACK_ENV']})\n"]] }
