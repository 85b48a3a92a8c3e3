"""read_scan on real files of every kind: volume files, DICOM series, pre-windowed image stacks."""
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image

from ich_study.core import ScanError
from ich_study.io import Scan, read_scan, scan_geometry, write_dicom_series

CT_ICH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ct-ich"


def phantom(n_slices=6, size=12):
    """HU volume whose corner voxel encodes the slice index and with a right-side marker."""
    volume = np.full((n_slices, size, size), -1000.0, np.float32)
    volume[:, 3:9, 3:9] = 40
    volume[:, 5:7, 1] = 1000                       # marker at image column 1 (patient's right)
    volume[:, 0, 0] = np.arange(n_slices) * 10     # slice number
    return volume


def test_dicom_series_is_ordered_by_position_not_name(tmp_path):
    volume = phantom()
    paths = write_dicom_series(volume, tmp_path / "s", rescale=(1.0, -1024.0), spacing_mm=(2.5, 0.5, 0.6))
    # names are random, and InstanceNumber is meaningless: sorting by either would scramble
    assert [p.name for p in paths] != sorted(p.name for p in paths)
    scan = read_scan(tmp_path / "s")
    np.testing.assert_array_equal(scan.volume, volume)
    assert scan.spacing_mm == (2.5, 0.5, 0.6)
    assert (scan.kind, scan.modality) == ("HU", "CT")
    assert scan.volume.dtype == np.float32
    header = pydicom.dcmread(paths[0], stop_before_pixels=True)
    for tag in ["ImagePositionPatient", "ImageOrientationPatient", "RescaleSlope", "RescaleIntercept",
                "Modality", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PixelSpacing"]:
        assert tag in header


def test_dicom_rescale_slope_intercept_gives_hu(tmp_path):
    volume = phantom()
    write_dicom_series(volume, tmp_path / "s", rescale=(0.5, -2048.0))
    stored = pydicom.dcmread(next((tmp_path / "s").iterdir())).pixel_array
    assert stored.min() >= 0          # stored values are not HU
    np.testing.assert_allclose(read_scan(tmp_path / "s").volume, volume, atol=0.5)


@pytest.mark.parametrize("compressor", ["JPEG", "JPEG2000"])
def test_compressed_dicom_gives_the_hu_of_the_uncompressed_series(tmp_path, compressor):
    """PACS exports often compress the pixel data: a series in JPEG lossless (which pydicom decodes only with a plugin
    this environment lacks, so it is read through SimpleITK/GDCM) or JPEG 2000 gives the voxels of the uncompressed
    series, the rescale applied once."""
    volume = phantom()
    paths = write_dicom_series(volume, tmp_path / "plain", rescale=(1.0, -1024.0))
    (tmp_path / "compressed").mkdir()
    for path in paths:                                  # the same files, compressed by GDCM with every header kept
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path)); reader.ReadImageInformation()
        image = sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkInt16)
        for key in reader.GetMetaDataKeys(): image.SetMetaData(key, reader.GetMetaData(key))
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn(); writer.SetUseCompression(True); writer.SetCompressor(compressor)
        writer.SetFileName(str(tmp_path / "compressed" / path.name)); writer.Execute(image)
    header = pydicom.dcmread(tmp_path / "compressed" / paths[0].name, stop_before_pixels=True)
    assert header.file_meta.TransferSyntaxUID.is_compressed and float(header.RescaleIntercept) == -1024
    np.testing.assert_array_equal(read_scan(tmp_path / "compressed").volume, volume)


def jpeg_lossless_multiframe(plain: Path, target: Path, work: Path) -> Path:
    """The enhanced file `plain` with each frame's pixel data compressed in JPEG lossless by GDCM, every other element
    kept, as a PACS export stores it."""
    from pydicom.encaps import encapsulate, generate_frames
    ds = pydicom.dcmread(plain)
    fragments = []
    for index, frame in enumerate(ds.pixel_array):      # each frame compressed alone, its bytes taken as a fragment
        writer = sitk.ImageFileWriter()
        writer.SetUseCompression(True); writer.SetCompressor("JPEG"); writer.SetFileName(str(work / f"{index}.dcm"))
        writer.Execute(sitk.GetImageFromArray(frame.astype(np.int16)))
        one = pydicom.dcmread(work / f"{index}.dcm")
        fragments.append(next(generate_frames(one.PixelData, number_of_frames=1)))
    ds.PixelData = encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = one.file_meta.TransferSyntaxUID
    ds.save_as(target, enforce_file_format=True)
    return target


def test_compressed_enhanced_dicom_gives_the_hu_of_the_uncompressed_file(tmp_path):
    """An enhanced (multi-frame) CT file in JPEG lossless, which pydicom alone cannot decode here, is decoded by
    SimpleITK/GDCM like a classic series: the same HU, frames stored out of order put in place, the rescale applied
    once, whether the frames share it or each carries it. Frames of different rescales are refused by name, since
    GDCM would apply the first frame's to all."""
    from ich_study.io import write_dicom_multiframe
    volume = phantom()
    plain = write_dicom_multiframe(volume, tmp_path / "plain.dcm", rescale=(2.0, -1024.0), frame_order=[3, 0, 5, 1, 4, 2])
    compressed = jpeg_lossless_multiframe(plain, tmp_path / "compressed.dcm", tmp_path)
    assert pydicom.dcmread(compressed, stop_before_pixels=True).file_meta.TransferSyntaxUID.is_compressed
    with pytest.raises(Exception):
        pydicom.dcmread(compressed).pixel_array       # no plugin here: the GDCM fallback is what reads it
    np.testing.assert_array_equal(read_scan(compressed).volume, read_scan(plain).volume)
    np.testing.assert_array_equal(read_scan(compressed).volume, volume)

    per_frame = pydicom.dcmread(compressed)           # the rescale in every frame's own groups, one value for all
    shared = per_frame.SharedFunctionalGroupsSequence[0]
    transform = shared.PixelValueTransformationSequence
    del shared.PixelValueTransformationSequence
    for groups in per_frame.PerFrameFunctionalGroupsSequence: groups.PixelValueTransformationSequence = transform
    per_frame.save_as(tmp_path / "per_frame.dcm", enforce_file_format=True)
    np.testing.assert_array_equal(read_scan(tmp_path / "per_frame.dcm").volume, volume)

    differing = pydicom.dcmread(tmp_path / "per_frame.dcm")
    differing.PerFrameFunctionalGroupsSequence[0].PixelValueTransformationSequence = pydicom.Sequence(
        [pydicom.Dataset(transform[0])])
    differing.PerFrameFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleSlope = 1
    differing.save_as(tmp_path / "differing.dcm", enforce_file_format=True)
    with pytest.raises(ScanError, match=r"differing\.dcm.*2 different rescales.*decompress"):
        read_scan(tmp_path / "differing.dcm")


def test_an_image_copied_twice_into_a_series_is_read_once(tmp_path):
    """An export that copied a slice under a second name (one SOPInstanceUID twice) gives the series as it is, where
    the two copies were refused as two slices at one position; two different images at one position still are."""
    volume = phantom(8)
    paths = write_dicom_series(volume, tmp_path / "s")
    (tmp_path / "s" / "copy of a slice.dcm").write_bytes(paths[3].read_bytes())
    np.testing.assert_array_equal(read_scan(tmp_path / "s").volume, volume)
    other = pydicom.dcmread(paths[3]); other.SOPInstanceUID = "1.2.3.4.5"; other.save_as(tmp_path / "s" / "other.dcm")
    with pytest.raises(ScanError, match="two slices at one position"):
        read_scan(tmp_path / "s")


def test_dicom_files_without_preamble_or_meta_header_are_read(tmp_path):
    """Older archives write DICOM without the 128-byte preamble and the meta header (no 'DICM', no transfer syntax),
    under names without a suffix: the series is found, read and gives the HU of the same files written in full."""
    volume = phantom()
    paths = write_dicom_series(volume, tmp_path / "full", rescale=(1.0, -1024.0))
    (tmp_path / "bare").mkdir()
    for number, path in enumerate(paths):
        dataset = pydicom.dcmread(path)
        dataset.preamble = None
        del dataset.file_meta
        dataset.save_as(tmp_path / "bare" / f"IM{number:04d}", enforce_file_format=False, implicit_vr=True,
                        little_endian=True)
    assert (tmp_path / "bare" / "IM0000").read_bytes()[128:132] != b"DICM"
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(tmp_path / "bare" / "IM0000")
    np.testing.assert_array_equal(read_scan(tmp_path / "bare").volume, volume)
    assert scan_geometry(tmp_path / "bare").n_slices == len(volume)


def test_feet_first_series_is_reoriented(tmp_path):
    volume = phantom()
    write_dicom_series(volume, tmp_path / "head", feet_first=False)
    write_dicom_series(volume, tmp_path / "feet", feet_first=True)
    head, feet = read_scan(tmp_path / "head"), read_scan(tmp_path / "feet")
    np.testing.assert_array_equal(head.volume, feet.volume)
    assert head.volume[0, 0, 0] == 0 and head.volume[-1, 0, 0] == 50   # inferior first
    assert head.volume[0, 5, 1] == 1000                                   # right side on image left


def test_several_series_choose_most_slices_or_named(tmp_path):
    volume = phantom(8)
    write_dicom_series(volume, tmp_path / "study/a", series_description="thin axial", study_uid="1.2.3")
    write_dicom_series(volume[::2], tmp_path / "study/b", series_description="thick axial",
                       spacing_mm=(10.0, 0.5, 0.5), seed=3, study_uid="1.2.3")
    write_dicom_series(volume, tmp_path / "study/c", modality="MR", series_description="mr", seed=4)
    assert read_scan(tmp_path / "study").n_slices == 8
    assert read_scan(tmp_path / "study", series="thick").n_slices == 4
    with pytest.raises(ScanError, match="no series matches"):
        read_scan(tmp_path / "study", series="sagittal")


def test_a_folder_of_several_studies_or_patients_is_refused_unless_a_series_is_named(tmp_path):
    """An export of two studies (admission and follow-up) or of two patients is not one scan: read_scan refuses it,
    naming each study or patient with its series, rather than classify whichever has the most slices."""
    volume = phantom(8)
    admission = write_dicom_series(volume, tmp_path / "export/1", series_description="admission", study_uid="1.2.3",
                                   series_uid="1.2.3.1")
    write_dicom_series(volume[::2], tmp_path / "export/2", series_description="day 2", spacing_mm=(10.0, 0.5, 0.5),
                       seed=3, study_uid="1.2.4", series_uid="1.2.4.1")
    with pytest.raises(ScanError, match=r"export: CT series of 2 studies: study 1\.2\.3: series 1\.2\.3\.1 "
                                        r"\('admission', 8 slices\); study 1\.2\.4: series 1\.2\.4\.1 \('day 2', 4 slices\)"):
        read_scan(tmp_path / "export")
    assert read_scan(tmp_path / "export", series="day 2").n_slices == 4
    assert read_scan(tmp_path / "export/1").n_slices == read_scan(admission).n_slices == 8    # one study's folder, its files
    write_dicom_series(volume, tmp_path / "export/3", patient_id="OTHER", seed=5)
    with pytest.raises(ScanError, match="CT series of 2 patients: patient OTHER: series"):
        read_scan(tmp_path / "export")
    with pytest.raises(ScanError, match="CT series of 2 patients"):
        scan_geometry(tmp_path / "export")


def test_dicom_errors(tmp_path):
    volume = phantom(8)
    write_dicom_series(volume, tmp_path / "mr", modality="MR")
    with pytest.raises(ScanError, match="not a CT"):
        read_scan(tmp_path / "mr")
    paths = write_dicom_series(volume, tmp_path / "gap")
    sorted(paths, key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))[4].unlink()
    with pytest.raises(ScanError, match="missing slice") as error:
        read_scan(tmp_path / "gap")
    assert str(tmp_path / "gap") in str(error.value)
    paths = write_dicom_series(volume, tmp_path / "uneven")
    ds = pydicom.dcmread(paths[0]); ds.ImagePositionPatient[2] += 1.0; ds.save_as(paths[0])
    with pytest.raises(ScanError, match="uneven|missing|gap"):
        read_scan(tmp_path / "uneven")
    write_dicom_series(volume, tmp_path / "regions", spacing_mm=(2.5, 0.5, 0.5), origin=(-64.0, -64.0, -40.0),
                       series_uid="1.2.99", study_uid="1.2.9")          # 2.5 mm through the posterior fossa, 5 mm above
    write_dicom_series(volume, tmp_path / "regions", spacing_mm=(5.0, 0.5, 0.5), origin=(-64.0, -64.0, -17.5),
                       series_uid="1.2.99", study_uid="1.2.9", seed=1)
    one = write_dicom_series(volume[:1], tmp_path / "one")
    with pytest.raises(ScanError, match="2D"):
        read_scan(one[0])
    for name, change in [("no-pixel-size", lambda ds: delattr(ds, "PixelSpacing")),
                         ("other-pixel-size", lambda ds: setattr(ds, "PixelSpacing", [0.6, 0.6]))]:
        paths = write_dicom_series(volume, tmp_path / name)
        edited = pydicom.dcmread(paths[3]); change(edited); edited.save_as(paths[3])
    (tmp_path / "volumes").mkdir()
    for name in ("a.nii.gz", "b.nii.gz"): sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / "volumes" / name))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "slice.png")
    (tmp_path / "notes.csv").write_text("not a scan", encoding="utf-8")
    for path, problem in [("mr", "not a CT"), ("gap", "missing slice"), ("uneven", "uneven|missing|gap"), ("one", "2D"),
                          ("nowhere", "no such file"), (one[0], "a single DICOM slice"), ("slice.png", "a single 2D image"),
                          ("notes.csv", "unknown file type"), ("no-pixel-size", "no valid PixelSpacing"),
                          ("volumes", r"a folder of 2 volume file\(s\) \(e.g. a.nii.gz\), each a scan of its own"),
                          ("other-pixel-size", "different pixel spacings"),
                          ("regions", r"spacing changes within the series \(2.50 mm for slices 1-8, then 5.00 mm for slices 8-16")
                          ]:                                                # the headers alone tell the same
        with pytest.raises(ScanError, match=problem):
            read_scan(tmp_path / path)
        with pytest.raises(ScanError, match=problem):
            scan_geometry(tmp_path / path)


def test_a_tilted_gantry_series_is_read_without_its_shear(tmp_path):
    """A series whose slice planes are tilted 20 degrees while the table moved 5 mm head to feet a slice (each slice's
    origin 1.71 mm further along its plane) reads as the volume on the planes' own grid, not a sheared one: its slices
    shifted back (whole pixels here, so exactly), 4.70 mm apart, the tilt recorded. Slices shifted in-plane other
    than by a tilt are refused by name, from the headers alone too."""
    from scipy.ndimage import shift as shift_image
    volume = np.full((8, 64, 48), -1000.0, np.float32)
    volume[:, 24:44, 8:40] = 35                     # within the field of view in every plane, as imaged
    volume[2:6, 30:34, 20:24] = 75                   # a bleed
    tilt, step_mm = 20.0, 5.0
    pixel_mm = step_mm * np.sin(np.radians(tilt)) / 3     # 3 rows of shift a slice
    as_imaged = np.stack([shift_image(plane, (-3 * k, 0), order=0, cval=-1000) for k, plane in enumerate(volume)])
    paths = write_dicom_series(as_imaged, tmp_path / "tilted", spacing_mm=(step_mm, pixel_mm, pixel_mm),
                               gantry_tilt_degrees=tilt)
    scan = read_scan(tmp_path / "tilted")
    assert not np.array_equal(as_imaged, volume)          # as stored, the bleed moves 3 rows a slice
    np.testing.assert_array_equal(scan.volume, volume)
    assert scan.gantry_tilt_degrees == 20.0
    assert scan.spacing_mm == pytest.approx((step_mm * np.cos(np.radians(tilt)), pixel_mm, pixel_mm))
    assert scan_geometry(tmp_path / "tilted").spacing_mm == pytest.approx(scan.spacing_mm)
    assert read_scan(write_dicom_series(volume, tmp_path / "straight")[0].parent).gantry_tilt_degrees == 0.0
    moved = sorted(paths, key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))[5]
    ds = pydicom.dcmread(moved); ds.ImagePositionPatient[0] += 4 * pixel_mm; ds.save_as(moved)    # 4 columns aside
    for read in (read_scan, scan_geometry):
        with pytest.raises(ScanError, match=r"shifted in-plane by up to 4.0 pixels off the line a gantry tilt") as err:
            read(tmp_path / "tilted")
        assert str(tmp_path / "tilted") in str(err.value)


def test_dicom_file_list_txt(tmp_path):
    volume = phantom()
    paths = write_dicom_series(volume, tmp_path / "mixed")
    write_dicom_series(phantom(9), tmp_path / "mixed", seed=7)       # another scan in the same folder
    listing = tmp_path / "scan.txt"
    listing.write_text("".join(f"{p}\n" for p in paths[::-1]), encoding="utf-8")
    np.testing.assert_array_equal(read_scan(listing).volume, volume)
    np.testing.assert_array_equal(read_scan([str(p) for p in paths]).volume, volume)


@pytest.mark.parametrize("name", ["v.nii.gz", "v.nii", "v.mha", "v.nrrd"])
def test_volume_files_roundtrip_and_ras_orientation(tmp_path, name):
    volume = phantom()
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((0.6, 0.5, 2.5))
    image.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))      # RAS-stored, as NIfTI from many tools
    sitk.WriteImage(image, str(tmp_path / name))
    scan = read_scan(tmp_path / name)
    np.testing.assert_array_equal(scan.volume, volume[:, ::-1, ::-1])   # flipped to LPS
    np.testing.assert_allclose(scan.spacing_mm, (2.5, 0.5, 0.6), rtol=1e-6)   # NIfTI stores float32
    assert scan.direction == (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)


def test_volume_file_errors(tmp_path):
    with pytest.raises(ScanError, match="no such"):
        read_scan(tmp_path / "absent.nii.gz")
    volume = np.random.default_rng(0).normal(size=(10, 32, 32)).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / "whole.nii.gz"))
    data = (tmp_path / "whole.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ScanError, match="truncated") as error:
        read_scan(tmp_path / "cut.nii.gz")
    assert "cut.nii.gz" in str(error.value)
    (tmp_path / "garbage.nii.gz").write_bytes(b"not a gzip file at all" * 20)
    with pytest.raises(ScanError):
        read_scan(tmp_path / "garbage.nii.gz")
    sitk.WriteImage(sitk.GetImageFromArray(volume[0]), str(tmp_path / "flat.nii.gz"))
    with pytest.raises(ScanError, match="2D"):
        read_scan(tmp_path / "flat.nii.gz")
    for name, bad in [("nan.nii.gz", np.nan), ("inf.mha", np.inf)]:
        broken = volume.copy(); broken[3, 4, 5] = bad
        sitk.WriteImage(sitk.GetImageFromArray(broken), str(tmp_path / name))
        with pytest.raises(ScanError, match="NaN or infinite"):
            read_scan(tmp_path / name)
    (tmp_path / "x.xyz").write_text("?", encoding="utf-8")
    with pytest.raises(ScanError, match="unknown file type"):
        read_scan(tmp_path / "x.xyz")


def write_stack(folder, n_slices=11, size=16, mode="L", colour=False):
    folder.mkdir(parents=True)
    for number in range(1, n_slices + 1):
        pixels = np.full((size, size), number * 10, np.uint8)
        if mode == "RGB":
            pixels = np.stack([pixels] * 3, -1)
            if colour: pixels[..., 0] = 255
        Image.fromarray(pixels).save(folder / f"{number}.png")


def test_image_stack_ordered_by_number_and_two_windows(tmp_path):
    write_stack(tmp_path / "p1/brain"); write_stack(tmp_path / "p1/bone")
    scan = read_scan(tmp_path / "p1")
    assert scan.volume.shape == (11, 2, 16, 16) and scan.kind == "windowed"
    assert scan.channel_names == ("brain", "bone")
    np.testing.assert_allclose(scan.volume[:, 0, 0, 0], np.arange(1, 12) * 10 / 255, rtol=1e-6)  # '10' after '9'
    write_stack(tmp_path / "plain")
    assert read_scan(tmp_path / "plain").volume.shape == (11, 16, 16)
    write_stack(tmp_path / "grey_rgb", mode="RGB")
    np.testing.assert_allclose(read_scan(tmp_path / "grey_rgb").volume, read_scan(tmp_path / "plain").volume)


def test_image_stack_errors(tmp_path):
    write_stack(tmp_path / "colour", mode="RGB", colour=True)
    with pytest.raises(ScanError, match="colour"):
        read_scan(tmp_path / "colour")
    write_stack(tmp_path / "holes")
    (tmp_path / "holes/5.png").unlink()
    with pytest.raises(ScanError, match="missing slice"):
        read_scan(tmp_path / "holes")
    write_stack(tmp_path / "single", n_slices=1)
    with pytest.raises(ScanError, match="2D"):
        read_scan(tmp_path / "single")
    with pytest.raises(ScanError, match="2D"):
        read_scan(tmp_path / "single/1.png")


@pytest.mark.skipif(not CT_ICH.exists(), reason="CT-ICH copy not present")
def test_real_ct_ich_patient():
    patient = CT_ICH / "Patients_CT" / "049"
    scan = read_scan(patient)
    n_files = len(list((patient / "brain").glob("*.jpg")))
    assert scan.volume.shape == (n_files, 2, 650, 650)
    assert scan.kind == "windowed" and scan.spacing_mm[0] == 5.0
    assert 0.0 <= scan.volume.min() and scan.volume.max() <= 1.0
    first = np.asarray(Image.open(patient / "bone" / "1.jpg"), np.float32) / 255
    tenth = np.asarray(Image.open(patient / "bone" / "10.jpg"), np.float32) / 255
    np.testing.assert_allclose(scan.volume[0, 1], first)
    np.testing.assert_allclose(scan.volume[9, 1], tenth)


def test_image_stack_palette_and_16_bit(tmp_path):
    (tmp_path / "p").mkdir(); (tmp_path / "w").mkdir()
    for number in range(1, 4):
        grey = np.full((8, 8), number * 50, np.uint8)
        Image.fromarray(grey).convert("P").save(tmp_path / "p" / f"slice_{number:03d}.png")
        Image.fromarray((grey.astype(np.uint16) * 257)).save(tmp_path / "w" / f"{number}.png")
    expected = np.arange(1, 4) * 50 / 255
    np.testing.assert_allclose(read_scan(tmp_path / "p").volume[:, 0, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(read_scan(tmp_path / "w").volume[:, 0, 0], expected, rtol=1e-6)


def test_enhanced_multiframe_ct(tmp_path):
    """An enhanced CT file (the whole series in one file, frames stored out of order, geometry and rescale in
    functional groups) reads as the classic series of the same slices, and so does its folder; a frame's own rescale
    wins over the one shared by all frames."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from ich_study.io import write_dicom_multiframe
    volume = np.random.default_rng(4).integers(-1000, 2000, size=(7, 10, 12)).astype(np.float32)
    write_dicom_series(volume, tmp_path / "classic", spacing_mm=(2.5, 0.5, 0.6))
    path = write_dicom_multiframe(volume, tmp_path / "enhanced" / "ct.dcm", spacing_mm=(2.5, 0.5, 0.6),
                                  frame_order=[6, 2, 0, 5, 1, 4, 3])
    classic = read_scan(tmp_path / "classic")
    for given in (path, tmp_path / "enhanced"):
        enhanced = read_scan(given)
        np.testing.assert_array_equal(enhanced.volume, classic.volume)
        assert enhanced.spacing_mm == classic.spacing_mm and enhanced.kind == "HU"
    ds = pydicom.dcmread(path)                     # frame 0 (slice 6) stored with an intercept of its own
    stored = ds.pixel_array.copy()
    stored[0] += 1024
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept = 1, -2048
    ds.PerFrameFunctionalGroupsSequence[0].PixelValueTransformationSequence = Sequence([transform])
    ds.PixelData = stored.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    np.testing.assert_array_equal(read_scan(path).volume, classic.volume)
