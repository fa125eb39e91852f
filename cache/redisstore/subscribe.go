package redisstore

import (
	"context"
	"fmt"
)

// Subscribe announces new heads: it returns a channel that receives the
// repository of every head put by any node (PutHead, PutHeadFenced) after
// Subscribe returns; read the head itself with Head. The channel is closed
// when ctx ends or the Store is closed.
//
// Pub/sub is at most once: announcements made while the connection is down
// are lost (the subscription reconnects by itself), and a receiver slower
// than the announcements holds them back. A follower should therefore also
// compare Heads with what it serves now and then, and after an error.
// Subscribe must not be called after Close.
func (s *Store) Subscribe(ctx context.Context) (<-chan string, error) {
	return s.subscribe(ctx, s.channel())
}

// SubscribeReleases is Subscribe for the release requests
// (RequestRelease): the channel receives the repository of each.
func (s *Store) SubscribeReleases(ctx context.Context) (<-chan string, error) {
	return s.subscribe(ctx, s.releasesChannel())
}

// subscribe returns the messages of channel, as Subscribe describes.
func (s *Store) subscribe(ctx context.Context, channel string) (<-chan string, error) {
	ps := s.rdb.Subscribe(ctx, channel)
	// The first reply confirms the subscription: from here on no
	// announcement is missed.
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("redisstore: subscribe to %s: %w", channel, err)
	}
	msgs := ps.Channel()
	out := make(chan string, 16)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				select {
				case out <- m.Payload:
				case <-ctx.Done():
					return
				case <-s.done:
					return
				}
			}
		}
	}()
	return out, nil
}
