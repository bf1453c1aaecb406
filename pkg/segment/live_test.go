package segment

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
)

// A reader walking Live while a writer runs the commit-word protocol in the
// same image sees every record whole or not at all. Under -race this also
// checks that DecodeFrame and Walk read nothing a writer may be storing:
// only the commit word, until it is positive.
func TestLiveWalkWithConcurrentWriter(t *testing.T) {
	img := NewImage(testSeq, testSize, 0)
	seed := FrameSeed(testSeq)
	const records = 400
	payload := func(i int) []byte {
		b := bytes.Repeat([]byte{byte(i)}, 8+i%50)
		binary.LittleEndian.PutUint32(b, uint32(i))
		return b
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		off := int64(HeaderSize)
		for i := range records {
			p := payload(i)
			length := int32(FrameHeaderSize + len(p))
			StoreLength(img, off, -length) // claim
			copy(img[off+FrameHeaderSize:], p)
			PutFrameHeader(img[off:], TypeData, length, int64(i))
			PutFrameCRC(img[off:], seed, off)
			StoreLength(img, off, length) // commit
			off += Align(int64(length))
		}
		PutEnd(img, testSeq, off, records)
	}()

	next, seen := int64(HeaderSize), 0
	for done := false; !done; {
		next = Walk(img, testSeq, next, Live, func(ev Event) bool {
			switch ev.Kind {
			case EvFrame:
				if !bytes.Equal(ev.Frame.Payload, payload(seen)) || ev.Frame.Time != int64(seen) {
					t.Errorf("record %d at %d: payload %x time %d", seen, ev.Offset, ev.Frame.Payload, ev.Frame.Time)
				}
				seen++
			case EvEnd:
				done = true
			case EvPending:
			default:
				t.Errorf("live walk met %v at %d", ev.Kind, ev.Offset)
				done = true
			}
			return true
		})
	}
	wg.Wait()
	if seen != records {
		t.Fatalf("saw %d records, want %d", seen, records)
	}
}
