console.log('not an entry point');
