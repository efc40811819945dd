require 'greeting'
run ->(env) { [200, { 'content-type' => 'text/plain' }, [Greeting.hello]] }
