require 'sinatra'

get '/' do
  content_type 'text/plain'
  "Hello from sinatra\n"
end
